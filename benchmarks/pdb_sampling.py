"""Does ``pdb_min_available`` depend on when the scrapes and the evaluation steps landed? Prints numbers.

    .venv/bin/python benchmarks/pdb_sampling.py reports/*-pod_failure [--prometheus-url URL]

For each recorded run (a ``resilience run`` directory whose stack, and so whose Prometheus data,
still exists) it re-reads, from Prometheus:

* the catalogue's PDB query, ``min`` of ``sum(sqlaudit_ready)`` over the run at the judge's 1 s
  step, once per phase of that step (the run start shifted by 0, 0.25, 0.5 and 0.75 s): a verdict
  that changes with the phase depends on when the evaluation landed, not on the system;
* the same with every series bridged over one failed scrape, ``sum(last_over_time(...[1500ms]))``;
* for every replica the fault did not kill: its scrapes that failed (``up == 0``), its slowest
  scrape, the lowest readiness it *reported* (``min_over_time``), and how many seconds it counted
  itself not ready (``sqlaudit_not_ready_seconds_total``, when the replicas export it).

Nothing is asserted; the victims come from the run's ``journal.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import requests

PHASES = (0.0, 0.25, 0.5, 0.75)
STEP_S = 1.0  # the judge's step for aggregate PromQL SLOs (probes.evaluate)


def victims(run_dir: Path) -> set[str]:
    """Replicas a fault of the run killed (``details.killed`` of its activities' outputs)."""
    journal = json.loads((run_dir / "journal.json").read_text())
    out: set[str] = set()
    for activity in journal.get("run", []):
        output = activity.get("output")
        if isinstance(output, dict):
            out.update((output.get("details") or {}).get("killed") or [])
    return out


def min_over_run(url: str, query: str, start: float, end: float, phase: float) -> float | None:
    """``min`` of ``query`` over [start + phase, end] at the judge's step (raw HTTP API: the client
    library rounds start and end to whole seconds, which would hide the phase)."""
    resp = requests.get(f"{url}/api/v1/query_range", timeout=10, params={
        "query": query, "start": f"{start + phase:.3f}", "end": f"{end:.3f}", "step": f"{STEP_S:g}"})
    resp.raise_for_status()
    values = [float(v) for r in resp.json()["data"]["result"] for _, v in r["values"]]
    values = [v for v in values if not math.isnan(v)]
    return min(values) if values else None


def per_replica(url: str, query: str, at: float) -> dict[str, float]:
    """``query`` at ``at``, by replica (a metric the replicas do not export reads as absent)."""
    resp = requests.get(f"{url}/api/v1/query", timeout=10, params={"query": query, "time": f"{at:.3f}"})
    resp.raise_for_status()
    return {r["metric"].get("replica", "?"): float(r["value"][1]) for r in resp.json()["data"]["result"]}


def examine(run_dir: Path, url_override: str | None, selector: str) -> dict[str, Any]:
    run = json.loads((run_dir / "run.json").read_text())
    url = url_override or run["endpoints"]["prometheus_url"]
    start, end = float(run["started_at"]), float(run["ended_at"])
    window = f"{max(1, math.ceil(end - start))}s"
    gauge = f"sum(sqlaudit_ready{{{selector}}})"
    bridged = f"sum(last_over_time(sqlaudit_ready{{{selector}}}[1500ms]))"
    out: dict[str, Any] = {
        "run": run_dir.name, "victims": sorted(victims(run_dir)),
        "catalogue_min_by_phase": [min_over_run(url, gauge, start, end, p) for p in PHASES],
        "bridged_min_by_phase": [min_over_run(url, bridged, start, end, p) for p in PHASES],
    }
    up = f"up{{{selector}}}[{window}]"
    failed = per_replica(url, f"count_over_time({up}) - sum_over_time({up})", end)
    slowest = per_replica(url, f"max_over_time(scrape_duration_seconds{{{selector}}}[{window}])", end)
    lowest = per_replica(url, f"min_over_time(sqlaudit_ready{{{selector}}}[{window}])", end)
    not_ready = per_replica(url, f"increase(sqlaudit_not_ready_seconds_total{{{selector}}}[{window}])", end)
    out["survivors"] = {r: {"failed_scrapes": int(failed.get(r, 0)), "slowest_scrape_s": round(slowest.get(r, 0), 3),
                            "lowest_reported_ready": lowest.get(r), "not_ready_s": not_ready.get(r)}
                        for r in sorted(set(failed) | set(lowest)) if r not in out["victims"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (reports/<time>-pod_failure ...)")
    parser.add_argument("--prometheus-url", help="Prometheus of the stack (default: the run's own)")
    parser.add_argument("--selector", default='job="audit-service"', help="label matchers of the replicas")
    args = parser.parse_args()
    results = [examine(d, args.prometheus_url, args.selector) for d in args.runs]
    for r in results:
        print(f"{r['run']}: killed {','.join(r['victims']) or '-'} | catalogue min by phase "
              f"{r['catalogue_min_by_phase']} | bridged {r['bridged_min_by_phase']}")
        for name, s in r["survivors"].items():
            print(f"    {name}: failed scrapes {s['failed_scrapes']}, slowest {s['slowest_scrape_s']} s, "
                  f"lowest reported ready {s['lowest_reported_ready']}, not ready {s['not_ready_s']} s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
