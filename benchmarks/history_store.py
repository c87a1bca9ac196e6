"""What the run history costs: a write per run, and a regression verdict over 1,000 stored runs.

Usage (no stack needed)::

    .venv/bin/python benchmarks/history_store.py [--runs 1000] [--url postgresql://user:pw@host:port/db]

1. *Write per run, in a fresh process*: what ``resilience run`` pays at its end on top of what it has
   loaded anyway (the runner is imported first, untimed) — importing SQLAlchemy, opening the store
   (checking the migration head), reading the run directory and writing one run with its
   measurements (``record_run_safely``), over a few processes.
2. *Write per run, warm*: the same write again in one process (a gate's later runs, an import).
3. *Regression verdict over N stored runs*: N runs of one experiment in the store, then
   :func:`resilience.baseline.compare_scenario` with ``--baseline last-N`` for one candidate run —
   reading the N runs and their measurements, and one Mann–Whitney test per SLO. The goal is < 1 s
   for N = 1,000.

Prints one line per measurement. SQLite by default (a temporary file); ``--url`` measures another store
(its runs are written under a unique experiment name and left there).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from resilience.baseline import compare_scenario  # noqa: E402
from resilience.history.record import run_record  # noqa: E402
from resilience.history.store import HistoryStore, record_run_safely  # noqa: E402

T0 = 1795763700.0
SLOS = [("rto_replicas_ready", "<= 60", "seconds"), ("rto_data_flow", "<= 60", "seconds"), ("rpo", "<= 0", "seconds"),
        ("data_loss", "== 0", "events"), ("availability", ">= 99.9", "percent"),
        ("pdb_min_available", ">= 2", "replicas"), ("consumer_lag_critical", "< 50000", "events"),
        ("violations_lost", "== 0", "count")]


def make_run(root: Path, name: str, experiment: str, started: float, rng: random.Random) -> Path:
    """A run directory as the runner writes it (run.json, summary.json; the rest is not read)."""
    d = root / name
    d.mkdir(parents=True)
    values = {"rto_replicas_ready": 7 + rng.random() * 3, "rto_data_flow": 12 + rng.random() * 4, "rpo": 0.0,
              "data_loss": 0.0, "availability": 100.0, "pdb_min_available": 2.0,
              "consumer_lag_critical": 3000 + rng.random() * 2000, "violations_lost": 0.0}
    verdicts = [{"slo": s, "outcome": "pass", "measured": values[s], "objective": o, "unit": u, "reason": "",
                 "details": {}} for s, o, u in SLOS]
    (d / "run.json").write_text(json.dumps({
        "format": 1, "run_id": name, "scenario": "pod_failure", "experiment_name": experiment,
        "experiment": f"experiments/{experiment}.yaml", "title": "bench", "target": "local",
        "load": {"shape": "steady", "rate_eps": 300, "duration_s": 100, "seed": 42},
        "stack": {"port_base": 19000, "profile": "minimal"}, "started_at": started, "ended_at": started + 150,
        "fault": {"name": "faults.replicas.kill_replicas", "start": started + 20, "end": started + 20}}))
    (d / "summary.json").write_text(json.dumps({
        "format": 1, "scenario": "pod_failure", "outcome": "pass", "exit_code": 0, "verdicts": verdicts,
        "load": {"asked_eps": 300, "achieved_eps": 297.5, "acknowledged": 29750, "failed": 0}, "errors": [],
        "score": 90.0}))
    return d


def fresh_process_write(url: str, run_dir: Path, n: int) -> list[float]:
    """Seconds one new process spends on the write (its total minus an idle process's), n times."""
    write = ("import time,sys; from pathlib import Path; import resilience.runner; t=time.perf_counter(); "
             "from resilience.history.store import record_run_safely; "
             f"out=record_run_safely(Path({str(run_dir)!r}), url={url!r}); "
             "assert out['recorded'], out; print(time.perf_counter()-t)")
    out = []
    for _ in range(n):
        p = subprocess.run([sys.executable, "-c", write], capture_output=True, text=True, cwd=REPO, timeout=120,
                           check=True)
        out.append(float(p.stdout.strip().splitlines()[-1]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000, help="runs stored before the regression verdict")
    ap.add_argument("--url", default=None, help="history store (default: a temporary SQLite file)")
    ap.add_argument("--processes", type=int, default=5, help="fresh processes for the cold write")
    args = ap.parse_args()
    rng = random.Random(17)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = args.url or f"sqlite:///{root / 'history.sqlite'}"
        experiment = f"bench_{uuid.uuid4().hex[:8]}"
        probe = make_run(root / "runs", f"{experiment}-probe", experiment, T0 - 10_000, rng)
        cold = fresh_process_write(url, probe, args.processes)
        print(f"write per run, fresh process (SQLAlchemy import, open, head check, write): median "
              f"{1000 * statistics.median(cold):.0f} ms, max {1000 * max(cold):.0f} ms over {len(cold)} processes")
        store = HistoryStore.open(url)
        warm = []
        t_fill = time.perf_counter()
        for i in range(args.runs):
            d = make_run(root / "runs", f"{experiment}-{i:05d}", experiment, T0 + 600 * i, rng)
            t = time.perf_counter()
            store.record_run(run_record(d))
            warm.append(time.perf_counter() - t)
        fill = time.perf_counter() - t_fill
        warm.sort()
        print(f"write per run, warm (same process): median {1000 * statistics.median(warm):.1f} ms, "
              f"p95 {1000 * warm[int(0.95 * len(warm))]:.1f} ms over {len(warm)} runs ({fill:.1f} s to fill)")
        gate = root / "gate-bench"
        cand = make_run(gate, f"{experiment}-candidate", experiment, T0 + 600 * args.runs + 60, rng)
        t = time.perf_counter()
        rows = store.runs(experiment=experiment, before=T0 + 600 * args.runs, limit=args.runs)
        t_read = time.perf_counter() - t
        import scipy.stats  # noqa: F401  (imported once by any gate; not part of a verdict's cost)

        times = []
        for _ in range(5):
            t = time.perf_counter()
            cmp = compare_scenario(store, f"last-{args.runs}", cand, before=T0 + 600 * args.runs)
            times.append(time.perf_counter() - t)
        n = {c["slo"]: c["n_baseline"] for c in cmp}
        print(f"regression verdict over {len(rows)} stored runs ({len(cmp)} SLOs, n_baseline "
              f"{max(n.values())}): median {1000 * statistics.median(times):.0f} ms, max {1000 * max(times):.0f} ms "
              f"(reading the runs alone: {1000 * t_read:.0f} ms) — goal < 1000 ms")
        print(f"store: {store}")
        _ = record_run_safely
    return 0


if __name__ == "__main__":
    sys.exit(main())
