"""A failed scrape of the readiness exporter is missing data, not an outage (Prometheus' own engine decides).

Readiness comes from kube-state-metrics' series (``kube_pod_status_ready``; the local stack's and the local
cluster's exporters serve the same names). When a scrape of that exporter fails, every one of its series is
missing for a moment; the measure used to add ``or vector(0)`` so that "no pod at all" read as 0 ready, and so
read such a gap as 0 ready too: on the local cluster at load average 38, 3 % of the exporter's scrapes missed
their 400 ms timeout and a config_change run FAILED on pdb_min_available 0 and availability 99.39 % while the
kubelet had two pods Ready throughout (2026-12-02). The measure now says 0 only when the exporter *was* scraped
(its ``kube_statefulset_replicas`` is there) and no pod is ready; a failed scrape gives no sample, which the
verdicts treat as missing data. Evaluated by ``promtool test rules`` on input series, for both profiles that
read readiness this way; with ``or vector(0)`` the gap case fails.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from probes.slo import load_catalogue

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None,
                                reason="promtool is not installed (Debian package prometheus)")

READY = 'kube_pod_status_ready{namespace="local", condition="true", pod="audit-service-0"}'
DESIRED = 'kube_statefulset_replicas{namespace="local", statefulset="audit-service"}'


@pytest.mark.parametrize("profile", ["local-kubelet", "kubernetes"])
def test_a_failed_scrape_gives_no_sample_and_a_scraped_empty_set_gives_zero(profile: str, tmp_path: Path) -> None:
    cat = load_catalogue()
    query = cat.query("replicas_ready", cat.view("local", profiles=[profile, "python-reference"]))
    tests = [{
        "interval": "1s",
        # t=0..2 scraped (ready), 3..5 every scrape failed (Prometheus writes a staleness marker at the first),
        # 6..7 scraped (ready), 8..11 scraped with the pod gone (its series marked stale, as for a deleted pod)
        "input_series": [{"series": READY, "values": "1 1 1 stale _ _ 1 1 stale"},
                         {"series": DESIRED, "values": "3 3 3 stale _ _ 3 3 3 3 3 3"}],
        "promql_expr_test": [
            {"expr": query, "eval_time": "2s", "exp_samples": [{"labels": "{}", "value": 1}]},
            {"expr": query, "eval_time": "5s", "exp_samples": []},   # the gap: missing, not 0
            {"expr": query, "eval_time": "7s", "exp_samples": [{"labels": "{}", "value": 1}]},
            {"expr": query, "eval_time": "11s", "exp_samples": [{"labels": "{}", "value": 0}]},  # scraped, none
        ],
    }]
    path = tmp_path / "ready.test.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1s", "tests": tests}))
    res = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{query}\n{res.stdout}{res.stderr}"
