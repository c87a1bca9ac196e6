"""Fabricated run directories (``docs/run-directory.md``) for the report tests: no stack needed."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

T0 = 1795763700.0
DURATION = 120.0
FAULT_START, FAULT_END = 30.0, 45.0

PASS_VERDICTS = [
    {"slo": "rto_replicas_ready", "outcome": "pass", "measured": 7.0, "objective": "<= 60", "unit": "seconds",
     "reason": "", "details": {}},
    {"slo": "rto_data_flow", "outcome": "pass", "measured": 12.0, "objective": "<= 60", "unit": "seconds",
     "reason": "", "details": {}},
    {"slo": "data_loss", "outcome": "pass", "measured": 0.0, "objective": "== 0", "unit": "events", "reason": "",
     "details": {}},
    {"slo": "availability", "outcome": "pass", "measured": 100.0, "objective": ">= 99.9", "unit": "percent",
     "reason": "", "details": {}},
]
FAIL_VERDICT = {"slo": "pdb_min_available", "outcome": "fail", "measured": 1.0, "objective": ">= 2",
                "unit": "replicas", "reason": "measured 1 replicas, objective >= 2", "details": {}}
INCONCLUSIVE_VERDICT = {"slo": "consumer_lag_critical", "outcome": "inconclusive", "measured": None,
                        "objective": "< 50000", "unit": "events", "reason": "Prometheus returned no data",
                        "details": {}}
EXIT = {"pass": 0, "fail": 1, "inconclusive": 2}


def series_doc(duration: float = DURATION, gaps: list[tuple[float, float]] | None = None,
               drop: tuple[str, ...] = (), noisy: bool = False) -> dict[str, Any]:
    """A series.json: a lag bump and a latency spike during the fault, one replica down for 8 s.

    ``gaps`` are ``(from, to)`` seconds after T0 with no sample; ``drop`` names series left out
    (recorded as missing); ``noisy`` adds random noise (the worst case for PNG size).
    """
    rng = random.Random(7)
    gaps = gaps or []

    def sample(name: str, x: float) -> float:
        in_fault = FAULT_START <= x < FAULT_START + 20
        noise = rng.random() if noisy else 0.0
        if name == "consumer_lag":
            return (4000 * math.sin(math.pi * (x - FAULT_START) / 20) if in_fault else 20) + 50 * noise
        if name == "latency_p95_s":
            return (0.9 if in_fault else 0.12) + 0.05 * noise
        if name == "e2e_p95_s":
            return (1.6 if in_fault else 0.3) + 0.05 * noise
        if name == "throughput_eps":
            return (120 if in_fault else 300) + 20 * noise
        if name == "error_ratio":
            return (0.002 if in_fault else 0.0) + 0.0001 * noise
        return 2.0 if FAULT_START <= x < FAULT_START + 8 else 3.0

    units = {"consumer_lag": "events", "latency_p95_s": "seconds", "e2e_p95_s": "seconds",
             "throughput_eps": "events/s", "error_ratio": "ratio", "ready_replicas": "replicas"}
    series = {}
    for name, unit in units.items():
        if name in drop:
            continue
        points = [[T0 + x, sample(name, x)] for x in range(int(duration) + 1)
                  if not any(a <= x < b for a, b in gaps)]
        series[name] = {"unit": unit, "points": points}
    return {
        "step_s": 1, "series": series,
        "missing": {name: f"Prometheus: no data for {name}" for name in drop},
        "thresholds": {
            "consumer_lag": [{"label": "warning", "value": 10000}, {"label": "critical", "value": 50000}],
            "latency_p95_s": [{"label": "SLO p95", "value": 0.5}],
            "e2e_p95_s": [{"label": "SLO p95", "value": 0.5}],
            "error_ratio": [{"label": "SLO", "value": 0.001}],
            "ready_replicas": [{"label": "PDB min", "value": 2}],
        },
    }


def make_run(root: Path, name: str = "run", *, outcome: str = "pass", title: str = "Single pod failure",
             scenario: str = "pod_failure", summary: bool = True, series: dict[str, Any] | bool | None = True,
             fault_end: float | None = FAULT_END, lost_ids: list[str] | None = None,
             verdicts: list[dict[str, Any]] | None = None, run_extra: dict[str, Any] | None = None,
             duration: float = DURATION) -> Path:
    """Write a run directory under ``root`` and return it.

    ``outcome`` picks the verdicts (``pass``, ``fail``, ``inconclusive``) unless ``verdicts``
    is given; ``summary=False`` leaves summary.json out (a crashed run); ``series`` is a
    series.json document, ``True`` for the default one, or ``None``/``False`` for none.
    """
    run_dir = root / name
    (run_dir / "ledger").mkdir(parents=True)
    (run_dir / "ledger" / "acked-test.jsonl").write_text("")
    (run_dir / "journal.json").write_text("{}")
    (run_dir / "runner.log").write_text("INFO starting\nERROR boom: <b>not markup</b>\n")
    run = {"format": 1, "run_id": f"20261127T071500Z-{scenario}-3f9c", "scenario": scenario,
           "experiment": f"experiments/{scenario}.yaml", "title": title, "target": "local",
           "load": {"shape": "steady", "rate_eps": 300, "duration_s": duration, "seed": 42},
           "stack": {"port_base": 19000, "profile": "minimal"},
           "started_at": T0, "ended_at": T0 + duration,
           "fault": {"name": "kill-one-replica", "start": T0 + FAULT_START,
                     "end": T0 + fault_end if fault_end is not None else None}}
    run.update(run_extra or {})
    (run_dir / "run.json").write_text(json.dumps(run))
    if verdicts is None:
        verdicts = list(PASS_VERDICTS)
        if outcome == "fail":
            verdicts.insert(2, FAIL_VERDICT)
            verdicts.append(INCONCLUSIVE_VERDICT)
        elif outcome == "inconclusive":
            verdicts.insert(1, INCONCLUSIVE_VERDICT)
    lost = lost_ids or []
    if summary:
        doc = {"format": 1, "scenario": scenario, "outcome": outcome, "exit_code": EXIT.get(outcome, 2),
               "verdicts": verdicts,
               "rto": {"replicas_ready": {"status": "recovered", "rto_s": 7.0, "reason": "ready again"},
                       "data_flow": {"status": "recovered", "rto_s": 12.0, "reason": "lag under warning"}},
               "data_loss": {"status": "measured", "acknowledged": 36000, "stored": 36000 - len(lost),
                             "lost": len(lost), "lost_ids": lost, "duplicated": 12, "late": 310,
                             "rpo_s": 4.5 if lost else 0.0},
               "load": {"asked_eps": 300, "achieved_eps": 298.7, "acknowledged": 36000, "failed": 0},
               "errors": []}
        (run_dir / "summary.json").write_text(json.dumps(doc))
    if series is True:
        series = series_doc(duration)
    if series:
        (run_dir / "series.json").write_text(json.dumps(series))
    return run_dir


@pytest.fixture
def run_factory(tmp_path: Path) -> Callable[..., Path]:
    """``make_run`` bound to this test's temporary directory."""

    def factory(name: str = "run", **kwargs: Any) -> Path:
        return make_run(tmp_path, name, **kwargs)

    return factory
