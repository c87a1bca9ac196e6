"""``resilience run --repeat N``: the same experiment N times, one verdict per SLO with a confidence interval.

Each trial is an ordinary run (its own run directory, report and history record). They are made
inside a *trials directory*, ``<reports>/<time>-<experiment>-x<N>/``, which is itself shaped like a
run directory (``docs/run-directory.md``): its ``run.json`` lists the trials, its ``summary.json``
holds one aggregated verdict per SLO (:func:`resilience.stats.interval_verdict`: the bootstrap
interval of the mean, widened by the measurement's resolution) and its ``report.html`` shows them.
So the gate, the JUnit file and the reports read a repeated run exactly as they read a single one.

Repetition stops early when a trial is aborted by a safeguard or the kill switch: the system is in
no state to be hurt again.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from probes.evaluate import RTO_SLOS, RTO_STEP_S
from probes.verdict import Outcome
from resilience import experiments as xp
from resilience.plan import RunError, RunOptions
from resilience.report.model import load_run_dir, num
from resilience.rundir import json_safe
from resilience.runner import RunResult, render
from resilience.score import parse_objective
from resilience.stats import interval_verdict

logger = logging.getLogger(__name__)

__all__ = ["ABORT_SLOS", "aggregate", "resolution", "run_trials"]

EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 2}
#: Verdicts that say a run was stopped before its end (a safeguard, the kill switch).
ABORT_SLOS = ("safeguard", "kill_switch")
#: SLOs read off a recovery series sampled every RTO step (the service's scrape interval locally).
STEPPED_SLOS = frozenset(RTO_SLOS | {"patroni_failover"})

RunOne = Callable[[RunOptions], RunResult]


def resolution(slo: str) -> float:
    """How far off one measurement of ``slo`` may be: the RTO step for recovery times, else 0.

    Recovery times are read off a series sampled every :data:`probes.evaluate.RTO_STEP_S` (0.5 s, the
    service's scrape interval on the local stack), so the true moment lies within one step. Counts
    (lost events, violations) are exact; values Prometheus computes (p95, lag, availability) are
    taken as they come: their own resolution is part of the value.
    """
    return RTO_STEP_S if slo in STEPPED_SLOS else 0.0


def run_trials(options: RunOptions, repeat: int, run_one: RunOne,
               on_trial: Callable[[int, int], None] | None = None) -> RunResult:
    """Run ``options`` ``repeat`` times into a new trials directory and aggregate the verdicts.

    Raises:
        RunError: the experiment cannot be loaded, or the first trial could not start (nothing injected).
    """
    if repeat < 1:
        raise RunError(f"--repeat {repeat}: must be at least 1")
    try:
        exp = xp.load(xp.resolve(options.experiment))
    except xp.ExperimentError as exc:
        raise RunError(str(exc)) from None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    trials_dir = options.reports_dir / f"{stamp}-{exp.name}-x{repeat}"
    trials_dir.mkdir(parents=True, exist_ok=False)
    run: dict[str, Any] = {"format": 1, "run_id": trials_dir.name, "scenario": exp.ext.scenario,
                           "experiment_name": exp.name, "experiment": str(exp.path), "title": exp.title,
                           "target": options.target, "stack": {"port_base": options.port_base,
                                                               "profile": exp.ext.profile},
                           "repeat": repeat, "trials": [], "started_at": time.time(), "ended_at": None,
                           "fault": None, "error": None}
    _write(trials_dir / "run.json", run)
    results: list[RunResult] = []
    for i in range(1, repeat + 1):
        if on_trial:
            on_trial(i, repeat)
        try:
            result = run_one(replace(options, reports_dir=trials_dir))
        except RunError as exc:
            if not results:
                _write(trials_dir / "run.json", {**run, "error": f"trial 1 did not start: {exc}",
                                                 "ended_at": time.time()})
                raise
            run["error"] = f"trial {i} did not start: {exc}"
            break
        results.append(result)
        run["trials"].append(result.run_dir.name)
        _write(trials_dir / "run.json", run)
        if any(v.get("slo") in ABORT_SLOS and v.get("outcome") != "pass" for v in result.summary.get("verdicts", [])):
            run["error"] = f"trial {i} was aborted ({result.run_dir.name}); no further trials"
            break
    run["ended_at"] = time.time()
    _write(trials_dir / "run.json", run)
    summary = aggregate([r.run_dir for r in results], exp.ext.scenario, repeat, run.get("error"))
    _write(trials_dir / "summary.json", summary)
    render(trials_dir)
    outcome = Outcome(summary["outcome"])
    return RunResult(trials_dir, outcome, EXIT_CODES[outcome.value], summary)


def aggregate(run_dirs: list[Path], scenario: str, repeat: int | None = None, error: str | None = None
              ) -> dict[str, Any]:
    """The summary.json of a trials directory from its trials' run directories (see the module doc)."""
    trials = [load_run_dir(d) for d in run_dirs]
    n_asked = repeat or len(trials)
    order: list[str] = []
    by_slo: dict[str, list[dict[str, Any] | None]] = {}
    for i, files in enumerate(trials):
        for v in files.verdicts:
            slo = str(v.get("slo") or "?")
            if slo not in by_slo:
                order.append(slo)
                by_slo[slo] = [None] * len(trials)
            by_slo[slo][i] = v
    verdicts = [_aggregate_one(slo, by_slo[slo]) for slo in order]
    errors = [f"trial {i + 1} ({f.run_dir.name}): {e}" for i, f in enumerate(trials)
              for e in f.summary_doc.get("errors") or []]
    if len(trials) < n_asked:
        errors.insert(0, error or f"only {len(trials)} of {n_asked} trials ran")
    scores = [num(f.summary_doc.get("score")) for f in trials]
    outcome = _overall([v["outcome"] for v in verdicts], bool(errors))
    return json_safe({
        "format": 1, "scenario": scenario, "outcome": outcome, "exit_code": EXIT_CODES[outcome],
        "verdicts": verdicts, "errors": errors,
        "score": round(statistics.fmean([s or 0.0 for s in scores]), 1) if scores else None,
        "trials": [{"run_dir": f.run_dir.name, "outcome": f.outcome.value, "score": s}
                   for f, s in zip(trials, scores, strict=True)],
        "load": _load(trials),
    })


def _aggregate_one(slo: str, per_trial: list[dict[str, Any] | None]) -> dict[str, Any]:
    present = [v for v in per_trial if v is not None]
    first = present[0]
    objective_text = str(first.get("objective") or "")
    unit = str(first.get("unit") or "")
    outcomes = [str(v.get("outcome")) if v else "missing" for v in per_trial]
    parsed = parse_objective(objective_text)
    if parsed is None or slo.startswith("probe:") or slo in ABORT_SLOS:
        out = "fail" if "fail" in outcomes else "pass" if all(o == "pass" for o in outcomes) else "inconclusive"
        reason = "" if out == "pass" else f"per trial: {', '.join(outcomes)}"
        return {"slo": slo, "outcome": out, "measured": None, "objective": objective_text, "unit": unit,
                "reason": reason, "details": {"outcomes": outcomes}}
    values: list[float | None] = []
    for v in per_trial:
        if v is None or v.get("outcome") == "inconclusive":
            values.append(None)
            continue
        m = num(v.get("measured"))
        if m is None and v.get("outcome") == "fail" and slo in STEPPED_SLOS:
            m = math.inf  # never recovered: JSON has no infinity
        values.append(m)
    iv = interval_verdict(values, parsed[0], parsed[1], resolution(slo))
    return {"slo": slo, "outcome": iv.outcome, "measured": None if iv.mean is None else round(iv.mean, 6),
            "objective": objective_text, "unit": unit, "reason": iv.reason,
            "details": {**iv.as_details(), "outcomes": outcomes, "statistic": "mean"}}


def _overall(outcomes: list[str], errors: bool) -> str:
    if "fail" in outcomes:
        return "fail"
    if not outcomes or errors or any(o != "pass" for o in outcomes):
        return "inconclusive"
    return "pass"


def _load(trials: list[Any]) -> dict[str, Any]:
    asked = [num(f.summary_doc.get("load", {}).get("asked_eps")) for f in trials]
    achieved = [num(f.summary_doc.get("load", {}).get("achieved_eps")) for f in trials]
    acked = [num(f.summary_doc.get("load", {}).get("acknowledged")) for f in trials]
    return {"asked_eps": _mean(asked), "achieved_eps": _mean(achieved),
            "acknowledged": int(sum(a or 0 for a in acked)), "trials": len(trials)}


def _mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return round(statistics.fmean(vals), 1) if vals else None


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(json_safe(data), indent=1, default=str))
