"""Was a hung replica restarted by its liveness probe, and how long after the hang?

The hang fault (``faults/replica_hang.py``) names the replicas it froze in its output (the run's journal).
Their restart counters (the ``replica_restarts`` measure: kube-state-metrics'
``kube_pod_container_status_restarts_total``, which the local stack's liveness prober exports under the same
name) say when each got a new process. The measurement is the seconds from the hang to the *last* hung
replica's first restart, observed up to the first rollback action: a replica that was still the stopped
process when the rollback ran (the rollback's resume found it and sent SIGCONT) was never restarted, and its
recovery is the rollback's, not the liveness probe's. That is "never restarted": a failure, never a pass.
"""

from __future__ import annotations

import math
from typing import Any

from probes import prom
from probes.evaluate import Measurement, RunWindow
from probes.slo import Catalogue, MetricView

__all__ = ["HANG_ACTION", "RESUME_ACTION", "from_journal", "restart_seconds"]

HANG_ACTION = "hang_replicas"
RESUME_ACTION = "resume_replicas"


def _outputs(journal: dict[str, Any], func: str, section: str) -> list[dict[str, Any]]:
    """Outputs of the succeeded activities of ``section`` (``run``, ``rollbacks``) calling ``func``."""
    found = []
    for entry in journal.get(section) or []:
        provider = (entry.get("activity") or {}).get("provider") or {}
        if provider.get("func") == func and entry.get("status") == "succeeded" and isinstance(entry.get("output"),
                                                                                               dict):
            found.append(entry["output"])
    return found


def from_journal(journal: dict[str, Any]) -> tuple[dict[str, int], set[str]]:
    """What the run's Chaos Toolkit journal says: ``({hung replica: its pid}, {hung replicas a rollback resumed})``.

    A replica the rollback resumed (SIGCONT to a process still stopped) was never restarted. The Kubernetes
    backend names the pods it resumed (``resumed_replicas``: pids repeat across pods); the local one gives pids."""
    hung: dict[str, int] = {}
    for out in _outputs(journal, HANG_ACTION, "run"):
        details = out.get("details") or {}
        hung.update({str(k): int(v) for k, v in (details.get("pids") or {}).items()})
    resumed: set[str] = set()
    for section in ("run", "rollbacks"):
        for out in _outputs(journal, RESUME_ACTION, section):
            details = out.get("details") or {}
            if "resumed_replicas" in details:
                resumed |= {str(name) for name in details["resumed_replicas"] or []}
            else:
                pids = {int(p) for p in details.get("resumed") or []}
                resumed |= {name for name, pid in hung.items() if pid in pids}
    return hung, resumed


def restart_seconds(cat: Catalogue, view: MetricView, prom_url: str, window: RunWindow, hung: dict[str, int],
                    resumed: set[str]) -> Measurement:
    """Seconds from the hang (``window.fault_start``) until every hung replica's restart counter rose, read up
    to ``window.end`` (the first rollback action); ``inf`` when one did not (or only the rollback resumed it);
    ``None`` (inconclusive) without a hang, a fault start or a counter for a hung replica."""
    if not hung:
        return Measurement(None, f"no {HANG_ACTION} succeeded in this run: no replica was hung")
    if window.fault_start is None:
        return Measurement(None, "no fault start recorded")
    start = window.fault_start
    query = cat.query("replica_restarts", view)
    series = prom.range_query(prom_url, query, start - 10.0, max(window.end, start + 1.0), step_s=0.5)
    by_pod = {str(s.labels.get("pod") or s.labels.get("replica") or ""): s.points for s in series}
    details: dict[str, Any] = {"query": query, "hung": hung, "observed_s": round(window.end - start, 1)}
    seconds: dict[str, float | None] = {}
    for pod in sorted(hung):
        points = by_pod.get(pod)
        if not points:
            return Measurement(None, f"no restart counter of {pod} in Prometheus ({query}): is the stack's liveness "
                                     "prober (or kube-state-metrics) running?", details)
        before = [v for t, v in points if t <= start]
        baseline = before[-1] if before else points[0][1]
        after = [t for t, v in points if t > start and v > baseline]
        seconds[pod] = round(after[0] - start, 1) if after else None
    details["restart_s"] = seconds
    by_rollback = [pod for pod in hung if pod in resumed]
    if by_rollback:
        details["recovered_by_rollback"] = by_rollback
        return Measurement(math.inf, f"{', '.join(sorted(by_rollback))} still the hung process when the rollback ran "
                                     "(it sent SIGCONT): recovered only by the rollback, never restarted by its "
                                     "liveness probe", details)
    missing = [pod for pod, s in seconds.items() if s is None]
    if missing:
        return Measurement(math.inf, f"{', '.join(missing)} not restarted within the "
                                     f"{window.end - start:.0f} s observed after the hang (up to the first rollback "
                                     "action)", details)
    return Measurement(max(s for s in seconds.values() if s is not None), "", details)
