"""The safeguard control inside a real chaoslib run (no stack): the kill switch interrupts the method at once,
every rollback still runs, and rules come from the SLO catalogue, never from metric names in Python."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from faults import killswitch
from probes.burnrate import burn_rules, expand_abort_if
from probes.slo import load_catalogue
from resilience.safeguards import attach, judged_slos, stop_verdicts
from target.settings import resolve


def _experiment(marker: Path) -> dict[str, Any]:
    return {
        "version": "1.0.0", "title": "a long pause that the kill switch cuts short",
        "description": "unit test", "tags": [],
        "extensions": [{"name": "sql-audit-resilience", "scenario": "pod_failure"}],
        "method": [{"type": "action", "name": "pretend-fault", "pauses": {"after": 60},
                    "provider": {"type": "python", "module": "time", "func": "sleep", "arguments": {"secs": 0}}}],
        "rollbacks": [{"type": "action", "name": "undo", "provider": {
            "type": "process", "path": "touch", "arguments": str(marker)}}],
    }


def test_kill_switch_interrupts_a_pause_and_every_rollback_runs(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoslib.run import Runner
    from chaoslib.types import Strategy

    state = tmp_path / "faults"
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(state))
    monkeypatch.setenv("RESILIENCE_PORT_BASE", "20800")
    marker = tmp_path / "rolled-back"
    doc = _experiment(marker)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = resolve({})
    timer = threading.Timer(1.5, killswitch.halt, args=(settings, "test: stop everything"))
    timer.start()
    t0 = time.monotonic()
    try:
        journal = Runner(Strategy.DEFAULT).run(attach(doc, run_dir), {"runtime": {"rollbacks": {"strategy": "always"}}},
                                               experiment_vars=({}, {}))
    finally:
        timer.cancel()
        killswitch.resume(settings)
    took = time.monotonic() - t0
    assert journal["status"] == "interrupted", journal["status"]
    assert took < 6, f"the 60 s pause was not cut short ({took:.1f} s)"
    assert marker.exists(), "the rollback did not run"
    stop = json.loads((run_dir / "safeguard.json").read_text())
    assert stop["kind"] == "kill_switch" and stop["armed"] and stop["interrupted_at"] - stop["detected_at"] < 2
    [verdict] = stop_verdicts(run_dir)
    assert verdict.slo == "kill_switch" and verdict.outcome.value == "inconclusive"
    assert "test: stop everything" in verdict.reason


def test_burn_rate_rules_are_built_from_the_catalogue_for_budget_slos_only() -> None:
    cat = load_catalogue()
    view = cat.view("local")
    rules = burn_rules(cat, view, ["availability", "error_rate", "rto_replicas_ready", "consumer_lag_critical"])
    assert sorted({r.slo for r in rules}) == ["availability", "error_rate"]
    avail = next(r for r in rules if r.slo == "availability" and r.factor == 14.4)
    assert (avail.long_s, avail.short_s, avail.budget) == (300, 60, pytest.approx(0.1))
    assert avail.long_query == f"(100 - ({cat.promql('availability', view, window='300s')})) / 0.1"
    assert cat.query("replicas_ready", view) in avail.short_query
    # counted from the experiment's start: 30 s into it, the 300 s burn is the 30 s burn times 30/300
    scaled = avail.query(300, since=1000.0, now=1030.5)
    assert scaled == f"((100 - ({cat.promql('availability', view, window='30s')})) / 0.1) * 30 / 300"
    assert avail.query(300, since=1000.0, now=2000.0) == avail.long_query
    err = next(r for r in rules if r.slo == "error_rate")
    assert err.long_query == f"({cat.promql('error_rate', view, window='300s')}) / 0.001"


def test_an_slo_the_experiment_breaks_on_purpose_gets_no_rule() -> None:
    cat = load_catalogue()
    doc = {"extensions": [{"name": "sql-audit-resilience", "scenario": "clickhouse_failure",
                           "slos": ["rto_data_flow", "rpo", "data_loss"]}]}
    assert judged_slos(doc, cat) == ["rto_data_flow", "rpo", "data_loss"]
    assert burn_rules(cat, cat.view("local"), judged_slos(doc, cat)) == []
    pod = {"extensions": [{"name": "sql-audit-resilience", "scenario": "pod_failure"}]}
    assert {r.slo for r in burn_rules(cat, cat.view("local"), judged_slos(pod, cat))} == {"availability"}


def test_abort_if_expands_measures_and_refuses_unknown_names() -> None:
    cat = load_catalogue()
    view = cat.view("local")
    cond = expand_abort_if(cat, view, "{consumer_lag} > 40000")
    assert cond.query == f"({cat.query('consumer_lag', view, window='30s')}) > 40000"
    with pytest.raises(ValueError, match="lag not a measure; measures: replicas_ready"):
        expand_abort_if(cat, view, "{lag} > 1")
