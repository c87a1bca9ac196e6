"""The pod-state exporter as a stack component: readiness the way kube-state-metrics exports it
(see ``stack/pod_state_exporter.py``), so the ``kubernetes`` metric profile reads the local stack too."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stack import liveness
from stack.components.base import Component, exporter_checks
from stack.components.prometheus import FAST_SCRAPE
from stack.context import StackContext
from stack.endpoints import HOST
from stack.errors import StackError
from stack.replicas_file import write_replicas_file

NAMESPACE = "local"
"""The ``namespace`` label of the local stack's replicas (the SLO catalogue's local target uses it)."""
LIVENESS_SWITCH = "RESILIENCE_LIVENESS"
"""``off`` in the environment of ``resilience up`` starts the stack without the liveness prober (a hung replica
then stays hung: how the tests prove the prober is what restarts it)."""


def replicas_file(ctx: StackContext) -> Path:
    """The exporter's list of replicas (``{pod: readiness URL}``), rewritten by a scale (:mod:`stack.scale`)."""
    return ctx.conf_dir / "pod-state-replicas.json"


def replica_urls(replicas: list[Component]) -> dict[str, str]:
    """``{pod: readiness URL}`` of the replica components, as the replicas file holds it."""
    return {replica.name: replica.endpoint for replica in replicas}


def pod_state_exporter(ctx: StackContext, replicas: list[Component], statefulset: str) -> list[Component]:
    """One exporter probing each replica's readiness endpoint (its ``endpoint``) every 0.5 s; it follows
    the replicas file (:func:`replicas_file`, written at ``up``) when a scale changes the replicas."""
    port = ctx.endpoints.port("pod_state_exporter")
    url = f"http://{HOST}:{port}/metrics"

    probe, health = exporter_checks("pod-state-exporter", url, "kube_statefulset_status_replicas_ready",
                                    lambda v: f"{v:.0f}/{len(replicas)} ready")

    # A kubelet's defaults are a 10 s period, 1 s timeout and 3 failures; a finer period shows short
    # outages, and 2 failures in a row keep one slow answer on a busy machine from reading as one. Each
    # unready spell is exported for two of Prometheus' scrape intervals, so one scrape at least sees it.
    command = [sys.executable, "-m", "stack.pod_state_exporter", "--port", str(port), "--namespace", NAMESPACE,
               "--statefulset", statefulset, "--period", "0.5", "--timeout", "1.0", "--failure-threshold", "2",
               "--min-unready", f"{min_unready_s():g}", "--replicas-file", str(replicas_file(ctx))]
    for replica in replicas:
        command += ["--replica", f"{replica.name}={replica.endpoint}"]
    command += _liveness_args(ctx, replicas, statefulset)
    return [Component(
        name="pod-state-exporter",
        command=command,
        ports=["pod_state_exporter"],
        probe=probe,
        health=health,
        prepare=lambda c: write_replicas_file(replicas_file(c), replica_urls(replicas)),
        group="exporters",
        startup_timeout=30,
        metrics=f"{HOST}:{port}",
        endpoint=url,
    )]


def min_unready_s() -> float:
    """How long the exporter shows each unready spell at least: two intervals of its Prometheus scrape."""
    interval = FAST_SCRAPE["exporters"]["scrape_interval"]
    if not interval.endswith("ms"):
        raise StackError(f"the exporters' scrape interval {interval!r} is not in ms (stack/components/prometheus.py)")
    return 2 * int(interval[:-2]) / 1000


def _liveness_args(ctx: StackContext, replicas: list[Component], container: str) -> list[str]:
    """The kubelet's liveness and startup probes for every replica (``stack/liveness.py``), timed as the
    StatefulSet manifest says; its startup probe allows each replica the start-up its component declares if
    that is longer (a JVM on a busy machine). None with ``RESILIENCE_LIVENESS=off``."""
    if os.environ.get(LIVENESS_SWITCH, "on").strip().lower() in ("off", "0", "false", "no"):
        return []
    timing = liveness.manifest_timing().with_startup_allowance(max(r.startup_timeout for r in replicas))
    args = ["--supervisor-socket", str(ctx.supervisor_socket), "--container", container, *timing.as_args()]
    for replica in replicas:
        try:
            args += ["--liveness", f"{replica.name}={liveness.liveness_url(replica.endpoint)}"]
        except StackError as exc:
            raise StackError(f"{replica.name}: {exc}") from exc
    return args
