"""Every kill of a replica shows in Prometheus' readiness, however quickly the replica comes back.

On the session stack, one replica is SIGKILLed several times (supervisord restarts it, in about 0.6 s on a quiet
machine); after each kill, the judge's own ``replicas_ready`` measure (docs/slo.yaml, the local view) must fall
below the replica count. This is what a pod_failure run's "fault_effect" reads: a kill that does not show there
makes the run inconclusive although the kill happened (the CI of 2026-12-03 failed so).

The guard of the pod-state exporter's rules (stack/pod_state_exporter.py: a refused connection is unready at once,
each unready spell is exported for two scrape intervals, a restart seen by pid begins one): without them the
exporter needed two failed probes 0.5 s apart and Prometheus missed 6 of 12 such kills (tests/stack/
test_readiness_unit.py); this test, run against the exporter without them, failed at its first missed kill
(2026-12-03).
"""

from __future__ import annotations

import time

import pytest
import requests

from probes import prom
from probes.slo import load_catalogue
from stack.core import LocalStack

pytestmark = [pytest.mark.stack, pytest.mark.extended]

KILLS = 5
POD = "audit-service-1"


def ready(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code < 400
    except requests.RequestException:
        return False


def assignment(urls: list[str]) -> list[int] | None:
    """Every partition the replicas hold (from their readiness details), or ``None`` if one does not answer."""
    held: list[int] = []
    for url in urls:
        try:
            held += requests.get(url, timeout=1).json()["details"]["partitions"]
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return None
    return sorted(held)


def test_every_kill_of_a_replica_shows_in_prometheus_readiness(stack: LocalStack) -> None:
    cat = load_catalogue()
    query = cat.query("replicas_ready", cat.view("local"))
    urls = [c.endpoint for c in stack.components() if c.group == "audit-service"]
    url = next(c.endpoint for c in stack.components() if c.name == POD)
    before = assignment(urls)
    replicas = stack.ctx.replicas
    prometheus = stack.endpoints.prometheus_url
    seen = []
    for i in range(KILLS):
        deadline = time.monotonic() + 60
        while not ready(url):
            assert time.monotonic() < deadline, f"{POD} not ready 60 s after kill {i}"
            time.sleep(0.2)
        time.sleep(2)  # the exporter and Prometheus agree it is ready again
        killed_at = time.time()
        stack.supervisor.kill(POD)
        back = time.monotonic() + 30
        while not ready(url):
            assert time.monotonic() < back, f"{POD} not back 30 s after kill {i}"
            time.sleep(0.05)
        down_s = time.time() - killed_at
        time.sleep(4)  # the spell, a scrape and the 1.5 s lookback of the measure
        [series] = prom.range_query(prometheus, query, killed_at - 1, time.time(), step_s=0.5)
        lowest = min(v for _, v in series.points)
        seen.append((round(down_s, 2), lowest))
        assert lowest < replicas, f"kill {i}: {POD} was down {down_s:.2f} s and Prometheus' replicas_ready " \
                                  f"stayed {lowest:g} (kills so far: (down s, lowest ready) {seen})"
    # leave the group as it was: the next test's latency must not pay for these rebalances
    deadline, stable_since = time.monotonic() + 90, None
    while stable_since is None or time.monotonic() - stable_since < 5:
        assert time.monotonic() < deadline, f"partitions not reassigned 90 s after the kills: {assignment(urls)} " \
                                            f"(before: {before})"
        stable_since = (stable_since or time.monotonic()) if assignment(urls) == before else None
        time.sleep(0.5)
