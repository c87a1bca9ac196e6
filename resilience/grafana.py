"""Fault windows as Grafana annotations, so dashboards show when a chaos run hit the system.

Configured by the environment: ``RESILIENCE_GRAFANA_URL`` (e.g. ``https://grafana.example``)
and ``RESILIENCE_GRAFANA_TOKEN`` (a service-account token; never written to a report or a log).
Without a URL nothing is posted. A failure to post is logged and never fails a run.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import requests

logger = logging.getLogger(__name__)


def annotate_fault(run: dict[str, Any], outcome: str | None = None) -> dict[str, Any] | None:
    """Post the run's fault window (``run["fault"]``) as one region annotation; returns Grafana's answer.

    Tags: ``chaos``, ``sql-audit-resilience``, the scenario and the outcome, so a dashboard's
    annotation query can select them (``deploy/k8s`` ships such a dashboard).
    """
    url = os.environ.get("RESILIENCE_GRAFANA_URL", "").rstrip("/")
    fault = run.get("fault")
    if not url or not fault or fault.get("start") is None:
        return None
    token = os.environ.get("RESILIENCE_GRAFANA_TOKEN", "")
    start_ms = int(float(fault["start"]) * 1000)
    end = fault.get("end") or run.get("ended_at") or fault["start"]
    body = {
        "time": start_ms,
        "timeEnd": max(start_ms, int(float(end) * 1000)),
        "tags": ["chaos", "sql-audit-resilience", str(run.get("scenario")), *( [outcome] if outcome else [])],
        "text": f"chaos: {run.get('scenario')} — {fault.get('name')} (run {run.get('run_id')}, {outcome or 'running'})",
    }
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = requests.post(f"{url}/api/annotations", json=body, headers=headers, timeout=5)
        resp.raise_for_status()
        logger.info("Grafana annotation posted at %s for run %s", url, run.get("run_id"))
        return dict(resp.json())
    except (requests.RequestException, ValueError) as exc:
        logger.warning("Grafana annotation at %s failed: %s", url, exc)
        return None
