"""``resilience gate --baseline``: each scenario's SLOs compared with a baseline from the history.

The baseline is chosen by a selector (``docs/report.md``, "Regression verdicts"):

- ``last-N`` — the N most recent runs of the same experiment, target and profile that started
  before this gate;
- a gate id (``gate-20261127T071500Z``) — that gate's runs of the experiment;
- a run id, or the id of a repeated run (its trials directory) — those runs;
- anything else is a release label (``RESILIENCE_RELEASE``; the service version; a git commit of
  at least 7 characters) — every run of the experiment recorded for that release.

Each SLO with a simple objective is then compared with :func:`resilience.stats.compare` (two-sided
Mann–Whitney U, Cliff's delta, medians): **regressed**, **improved**, **no change**, or
**insufficient data**. A regression fails the scenario's JUnit test case and makes the gate exit 1.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from resilience.history.store import HistoryStore, RunRow
from resilience.report.model import load_run_dir, num
from resilience.rundir import read_json
from resilience.score import parse_objective
from resilience.stats import compare
from resilience.trials import ABORT_SLOS, STEPPED_SLOS, resolution

logger = logging.getLogger(__name__)

__all__ = ["BaselineError", "baseline_runs", "candidate_values", "check_selector", "compare_scenario"]

_LAST = re.compile(r"^last[-:](\d+)$")


class BaselineError(ValueError):
    """The baseline selector matches nothing in the history (the message says what was looked for)."""


def check_selector(store: HistoryStore, selector: str) -> str:
    """What ``selector`` means in this store, for people; :class:`BaselineError` when it matches no run at all."""
    m = _LAST.match(selector)
    if m:
        if int(m.group(1)) < 1:
            raise BaselineError(f"--baseline {selector}: N must be at least 1")
        if store.count_runs() == 0:
            raise BaselineError(f"--baseline {selector}: the history at {store} holds no run yet")
        return f"the last {m.group(1)} runs of each experiment"
    if selector.startswith("gate-") and store.gate_exists(selector):
        return f"the runs of gate {selector}"
    if store.runs(run_ids=[selector], limit=1) or store.runs(trial_group=selector, limit=1):
        return f"run {selector}"
    if store.runs(release=selector, limit=1):
        return f"the runs of release {selector}"
    raise BaselineError(f"--baseline {selector!r}: no gate, run, repeated run or release of that name in the "
                        f"history at {store} (see `resilience history`)")


def baseline_runs(store: HistoryStore, selector: str, experiment: str, target: str, profile: str | None,
                  before: float) -> list[RunRow]:
    """The baseline runs of one experiment (see the module doc); crashed runs are left out by the callers."""
    m = _LAST.match(selector)
    common: dict[str, Any] = {"experiment": experiment, "target": target, "profile": profile}
    if m:
        return store.runs(**common, before=before, limit=int(m.group(1)))
    if selector.startswith("gate-") and store.gate_exists(selector):
        return store.runs(**common, gate_id=selector)
    found = store.runs(**common, run_ids=[selector]) or store.runs(**common, trial_group=selector)
    return found or store.runs(**common, release=selector, before=before)


def candidate_values(scenario_dir: Path) -> tuple[dict[str, list[float | None]], dict[str, str], list[str]]:
    """Per SLO, this gate's values (one per trial), the objective text, and the trials' run ids."""
    run = read_json(scenario_dir / "run.json") or {}
    dirs = [scenario_dir / t for t in run.get("trials", [])] if "trials" in run else [scenario_dir]
    values: dict[str, list[float | None]] = {}
    objectives: dict[str, str] = {}
    run_ids: list[str] = []
    for d in dirs:
        files = load_run_dir(d)
        run_ids.append(str(files.run_doc.get("run_id") or d.name))
        for v in files.verdicts:
            slo = str(v.get("slo") or "?")
            objectives.setdefault(slo, str(v.get("objective") or ""))
            values.setdefault(slo, []).append(_value(slo, v))
    return values, objectives, run_ids


def _value(slo: str, v: dict[str, Any]) -> float | None:
    if v.get("outcome") == "inconclusive":
        return None
    m = num(v.get("measured"))
    if m is None and v.get("outcome") == "fail" and slo in STEPPED_SLOS:
        return math.inf
    return m


def compare_scenario(store: HistoryStore, selector: str, scenario_dir: Path, before: float) -> list[dict[str, Any]]:
    """One comparison per SLO of the scenario run in ``scenario_dir`` against its baseline."""
    files = load_run_dir(scenario_dir)
    run = files.run_doc
    experiment = str(run.get("experiment_name") or Path(str(run.get("experiment") or "")).stem)
    profile = (run.get("stack") or {}).get("profile")
    values, objectives, own = candidate_values(scenario_dir)
    base = [r for r in baseline_runs(store, selector, experiment, files.target, profile, before)
            if r.run_id not in own]
    out = []
    for slo, cand in values.items():
        parsed = parse_objective(objectives.get(slo))
        if parsed is None or slo in ABORT_SLOS or slo.startswith("probe:"):
            continue
        base_values = [None if r.outcomes.get(slo) == "inconclusive" else r.values.get(slo)
                       for r in base if slo in r.values]
        c = compare(base_values, cand, parsed[0], parsed[1], resolution(slo))
        if not base:
            c = type(c)("insufficient data", None, None, None, c.median_candidate, 0, c.n_candidate,
                        f"no baseline run of {experiment} ({files.target}, {profile}) for --baseline {selector}")
        out.append({"scenario": files.scenario, "experiment": experiment, "slo": slo, "verdict": c.verdict,
                    "p_value": c.p_value, "effect_size": c.effect_size, "median_baseline": c.median_baseline,
                    "median_candidate": c.median_candidate, "n_baseline": c.n_baseline,
                    "n_candidate": c.n_candidate, "reason": c.reason})
    return out


def finish_gate(selector: str | None, gate_dir: Path, results: list[Any], started: float, exit_code: int, *,
                target: str, profile: str | None, timeout_s: float | None = None) -> str | None:
    """After the gate's runs: compare each scenario with the baseline (into ``results[i].comparisons``) and
    record the gate in the history. Bounded in time and never raising; returns a note when it could not.

    When a baseline was asked for and the history cannot answer, every scenario gets one comparison
    ``insufficient data`` saying why: asked whether the release is worse, the gate cannot say "no".
    """
    from resilience.history.gates import record_gate_dir, scenario_dirs
    from resilience.history.store import WRITE_TIMEOUT_S, bounded

    def work() -> None:
        store = HistoryStore.open()
        comparisons: list[dict[str, Any]] = []
        if selector:
            for r in results:
                if (r.run_dir / "run.json").is_file() and r.run_dir != gate_dir:
                    r.comparisons = compare_scenario(store, selector, r.run_dir, started)
                    comparisons += r.comparisons
        run_ids = [rid for d in scenario_dirs(gate_dir) for rid in candidate_values(d)[2]]
        record_gate_dir(store, gate_dir, run_ids, comparisons, baseline=selector, exit_code=exit_code,
                        profile=profile, target=target)

    note = bounded(work, timeout_s or 3 * WRITE_TIMEOUT_S, f"gate {gate_dir.name}")
    if note and selector:
        for r in results:
            if not r.comparisons:
                r.comparisons = [{"scenario": r.scenario, "experiment": "", "slo": "*",
                                  "verdict": "insufficient data", "p_value": None, "effect_size": None,
                                  "median_baseline": None, "median_candidate": None, "n_baseline": 0,
                                  "n_candidate": 0, "reason": note}]
    return note
