"""Which alert rules fire, or come close, on a healthy stack under steady load with no fault; prints, asserts nothing.

    .venv/bin/python benchmarks/alerts_quiet.py --port-base 24000 --rate 300 --seconds 180

A run's ``alerts_quiet`` verdict only covers its ~20 s baseline, shorter than most alerts' ``for``: this
is the longer look. On a running local stack (``resilience up``) it runs the experiments' own load
(``loadtests``, the ledger off) for ``--seconds``, then reads Prometheus' ``ALERTS`` over that window
and prints, per alert, the seconds it spent pending (its condition true, its ``for`` not yet elapsed)
and firing, and the load average before and after: a pending alert on a healthy system is one
``for`` away from a false page.
"""

from __future__ import annotations

import argparse
import os
import time

import requests

from loadtests.locust_process import start_load, stop_load, wait_load
from stack.endpoints import Endpoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port-base", type=int, required=True)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()
    eps = Endpoints(args.port_base)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    start = time.time()
    handle = start_load(eps.kafka_bootstrap, rate=args.rate, duration=args.seconds, ledger_dir="")
    try:
        wait_load(handle, timeout=args.seconds + 60)
    finally:
        stop_load(handle)
    end = time.time()
    print(f"load average after: {os.getloadavg()[0]:.1f}; {args.rate:g} events/s for {end - start:.0f} s")
    params: dict[str, str | float] = {"query": "count by (alertname, alertstate) (ALERTS)", "start": start,
                                      "end": end, "step": 0.5}
    resp = requests.get(f"{eps.prometheus_url}/api/v1/query_range", timeout=10, params=params)
    resp.raise_for_status()
    rows = sorted((r["metric"]["alertname"], r["metric"]["alertstate"], 0.5 * len(r["values"]),
                   float(r["values"][0][0]) - start) for r in resp.json()["data"]["result"])
    for name, state, seconds, first in rows:
        print(f"{name:28s} {state:8s} {seconds:6.1f} s (from +{first:.1f} s)")
    if not [r for r in rows if r[0] != "Watchdog"]:
        print("no alert pending or firing besides the Watchdog")


if __name__ == "__main__":
    main()
