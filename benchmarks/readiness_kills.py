"""How many replica kills the judge's readiness measure sees; prints, asserts nothing.

    .venv/bin/python benchmarks/readiness_kills.py --port-base 24500 --kills 12

On a running local stack (``resilience up``) it SIGKILLs one replica ``--kills`` times (supervisord restarts
it) and prints, per kill: how long its readiness endpoint did not answer 2xx (polled every 50 ms), the
lowest readiness the pod-state exporter served for it meanwhile (polled the same way), and the lowest
``replicas_ready`` Prometheus gives over the 15 s after the kill, through the SLO catalogue's query for the
local view (what a ``pod_failure`` run's "fault_effect" reads). A kill Prometheus never shows is one a
``pod_failure`` run would call "fault did not take effect" (docs/local-stack.md, "Readiness").
"""

from __future__ import annotations

import argparse
import os
import time

import requests

from probes import prom
from probes.slo import load_catalogue
from stack.core import LocalStack


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=0.4).status_code < 400
    except requests.RequestException:
        return False


def exported(metrics_url: str, pod: str) -> float | None:
    """The pod's ``kube_pod_status_ready{condition="true"}`` as the exporter serves it now."""
    for line in requests.get(metrics_url, timeout=1).text.splitlines():
        if line.startswith("kube_pod_status_ready{") and f'pod="{pod}"' in line and 'condition="true"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port-base", type=int, required=True)
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--pod", default="audit-service-1")
    args = parser.parse_args()
    stack = LocalStack(port_base=args.port_base)
    if not stack.is_running():
        parser.error(f"no stack running at port base {args.port_base}: resilience up --port-base {args.port_base}")
    url = next(c.endpoint for c in stack.components() if c.name == args.pod)
    metrics = f"http://127.0.0.1:{stack.endpoints.port('pod_state_exporter')}/metrics"
    cat = load_catalogue()
    query = cat.query("replicas_ready", cat.view("local"))
    replicas = stack.ctx.replicas
    print(f"load average before: {os.getloadavg()[0]:.1f}; {args.kills} kills of {args.pod}")
    missed = 0
    for i in range(args.kills):
        while not answers(url):
            time.sleep(0.2)
        time.sleep(3)
        killed_at = time.time()
        stack.supervisor.kill(args.pod)
        back_at, lowest_exported = None, 1.0
        while time.time() - killed_at < 6:
            if back_at is None and answers(url):
                back_at = time.time()
            lowest_exported = min(lowest_exported, exported(metrics, args.pod) or 0.0)
            time.sleep(0.05)
        time.sleep(3)
        try:
            [series] = prom.range_query(stack.endpoints.prometheus_url, query, killed_at, killed_at + 15, step_s=0.5)
            lowest = min(v for _, v in series.points)
        except (prom.ProbeError, ValueError) as exc:
            lowest = float("nan")
            print(f"  ({exc})")
        seen = lowest < replicas
        missed += not seen
        down = f"{back_at - killed_at:.2f} s" if back_at else "> 6 s"
        print(f"kill {i + 1:2d}: endpoint down {down}, exporter lowest {lowest_exported:g}, "
              f"Prometheus replicas_ready lowest {lowest:g} ({'seen' if seen else 'MISSED'})", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}; Prometheus missed {missed} of {args.kills} kills")


if __name__ == "__main__":
    main()
