"""The pod-state exporter as a stack component: readiness the way kube-state-metrics exports it
(see ``stack/pod_state_exporter.py``), so the ``kubernetes`` metric profile reads the local stack too."""

from __future__ import annotations

import sys

import requests

from stack.components.base import Component
from stack.context import StackContext
from stack.endpoints import HOST
from stack.errors import ComponentError

NAMESPACE = "local"
"""The ``namespace`` label of the local stack's replicas (the SLO catalogue's local target uses it)."""


def pod_state_exporter(ctx: StackContext, replicas: list[Component], statefulset: str) -> list[Component]:
    """One exporter probing each replica's readiness endpoint (its ``endpoint``) every 0.5 s."""
    port = ctx.endpoints.port("pod_state_exporter")
    url = f"http://{HOST}:{port}/metrics"

    def probe(c: StackContext) -> str:
        requests.get(url, timeout=2).raise_for_status()
        return "serving /metrics"

    def health(c: StackContext) -> str:
        text = requests.get(url, timeout=2).text
        for line in text.splitlines():
            if line.startswith("kube_statefulset_status_replicas_ready{"):
                return f"{float(line.rsplit(' ', 1)[1]):.0f}/{len(replicas)} ready"
        raise ComponentError("pod-state-exporter", f"no kube_statefulset_status_replicas_ready at {url}")

    # A kubelet's defaults are a 10 s period, 1 s timeout and 3 failures; a finer period shows short
    # outages, and 2 failures in a row keep one slow answer on a busy machine from reading as one.
    command = [sys.executable, "-m", "stack.pod_state_exporter", "--port", str(port), "--namespace", NAMESPACE,
               "--statefulset", statefulset, "--period", "0.5", "--timeout", "1.0", "--failure-threshold", "2"]
    for replica in replicas:
        command += ["--replica", f"{replica.name}={replica.endpoint}"]
    return [Component(
        name="pod-state-exporter",
        command=command,
        ports=["pod_state_exporter"],
        probe=probe,
        health=health,
        group="exporters",
        startup_timeout=30,
        metrics=f"{HOST}:{port}",
        endpoint=url,
    )]
