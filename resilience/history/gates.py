"""A gate in the history: its outcome, score, versions, the runs it made and its baseline comparisons."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from resilience.history.record import environment, versions
from resilience.history.store import HistoryStore
from resilience.report.model import ScenarioResult, num
from resilience.rundir import read_json
from resilience.score import gate_score

__all__ = ["gate_fields", "record_gate_dir", "scenario_dirs"]


def scenario_dirs(gate_dir: Path) -> list[Path]:
    """The gate's scenarios: each direct subdirectory with a run.json (a run, or the trials of a repeated run)."""
    return sorted(p for p in Path(gate_dir).iterdir() if p.is_dir() and (p / "run.json").is_file())


def gate_fields(gate_dir: Path, results: list[ScenarioResult], exit_code: int, *, target: str = "local",
                profile: str | None = None, baseline: str | None = None, started_at: float | None = None,
                known_versions: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``gates`` row of a gate directory and its scenario results."""
    starts, ends, scores = [], [], []
    for r in results:
        run = read_json(r.run_dir / "run.json") or {}
        summary = read_json(r.run_dir / "summary.json") or {}
        starts.append(num(run.get("started_at")))
        ends.append(num(run.get("ended_at")))
        scores.append(num(summary.get("score")) if r.exit_code != 2 or summary else None)
    known_starts = [s for s in starts if s is not None]
    outcome = "fail" if exit_code == 1 else "pass" if exit_code == 0 else "inconclusive"
    v = known_versions if known_versions is not None else versions(target)
    return {"gate_id": Path(gate_dir).name, "started_at": started_at or (min(known_starts) if known_starts
                                                                          else time.time()),
            "ended_at": max((e for e in ends if e is not None), default=None), "outcome": outcome,
            "exit_code": exit_code, "score": gate_score(scores), "target": target, "profile": profile,
            "baseline": baseline, **v, "environment": environment(), "gate_dir": str(Path(gate_dir).resolve())}


def record_gate_dir(store: HistoryStore, gate_dir: Path, run_ids: Iterable[str],
                    comparisons: Iterable[dict[str, Any]] = (), baseline: str | None = None,
                    exit_code: int | None = None, profile: str | None = None, target: str | None = None,
                    known_versions: dict[str, Any] | None = None) -> int:
    """Record the gate in ``gate_dir`` (its runs must be recorded already, or be recorded later).

    ``known_versions``: what the gate tested, when it is not what this checkout is (an import).
    """
    results = [ScenarioResult.from_run_dir(d) for d in scenario_dirs(gate_dir)]
    if exit_code is None:
        codes = [r.exit_code for r in results]
        exit_code = 1 if 1 in codes else (2 if not codes or any(c != 0 for c in codes) else 0)
    tgt = target or next((r.target for r in results if r.target != "unknown"), "local")
    fields = gate_fields(gate_dir, results, exit_code, target=tgt, profile=profile, baseline=baseline,
                         known_versions=known_versions)
    return store.record_gate(fields, list(run_ids), comparisons)
