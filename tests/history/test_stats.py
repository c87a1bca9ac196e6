"""The interval verdict and the regression test (docs/report.md): each rule, and the cases it must refuse."""

from __future__ import annotations

import math

import pytest

from resilience.score import margin, parse_objective, run_score
from resilience.stats import compare, interval_verdict, min_p_value


def test_pass_only_when_the_widened_interval_is_inside_the_objective() -> None:
    v = interval_verdict([7.1, 8.0, 7.5, 6.9, 7.7], "<=", 60, 0.5)
    assert v.outcome == "pass" and v.low is not None and v.high is not None
    assert v.low <= 6.9 - 0.5 + 0.3 and v.high >= 8.0 - 0.3  # the resolution widens the bootstrap interval


def test_straddling_is_inconclusive_and_wholly_outside_is_fail() -> None:
    assert interval_verdict([55, 62, 58, 61, 59], "<=", 60, 0.5).outcome == "inconclusive"
    assert interval_verdict([65, 66, 67], "<=", 60, 0.5).outcome == "fail"


def test_the_resolution_alone_can_make_a_verdict_inconclusive() -> None:
    values = [59.5, 59.7, 59.6, 59.6]
    assert interval_verdict(values, "<", 60, 0.0).outcome == "pass"
    assert interval_verdict(values, "<", 60, 0.5).outcome == "inconclusive"


def test_missing_data_never_passes_and_a_trial_that_never_recovered_fails() -> None:
    assert interval_verdict([7, None, 8], "<=", 60, 0.5).outcome == "inconclusive"
    assert interval_verdict([7, math.inf, 8], "<=", 60, 0.5).outcome == "fail"
    assert interval_verdict([7.0], "<=", 60, 0.5).outcome == "inconclusive"


def test_an_equality_objective_passes_only_if_every_trial_met_it() -> None:
    assert interval_verdict([0, 0, 0], "==", 0, 0).outcome == "pass"
    assert interval_verdict([0, 0, 3], "==", 0, 0).outcome == "fail"


def test_a_clear_shift_regresses_and_the_same_distribution_is_no_change() -> None:
    base = [7.0, 7.5, 8.0, 7.2, 7.8]
    slower = compare(base, [12.0, 13.0, 12.5, 12.2, 13.1], "<=", 60, 0.5)
    assert slower.verdict == "regressed" and slower.effect_size == 1.0 and slower.p_value is not None
    assert slower.p_value < 0.01 and slower.median_delta == pytest.approx(5.0)
    assert compare(base, [7.1, 7.6, 7.9, 7.3, 7.7], "<=", 60, 0.5).verdict == "no change"
    faster = compare([12.0, 13.0, 12.5, 12.2, 13.1], base, "<=", 60, 0.5)
    assert faster.verdict == "improved"


def test_direction_follows_the_objective() -> None:
    lower_availability = compare([100.0] * 5, [97.0, 96.5, 97.2, 96.9, 97.1], ">=", 99.9, 0.0)
    assert lower_availability.verdict == "regressed"


def test_a_shift_within_the_resolution_is_no_change() -> None:
    assert compare([7.0, 7.1, 7.0, 7.1, 7.0], [7.3, 7.4, 7.3, 7.4, 7.3], "<=", 60, 0.5).verdict == "no change"


def test_samples_too_small_for_any_significance_are_insufficient_not_no_change() -> None:
    assert min_p_value(3, 3) == pytest.approx(0.1) and min_p_value(4, 4) < 0.05
    assert compare([7, 7.5, 8], [12, 13, 12.5], "<=", 60, 0.5).verdict == "insufficient data"
    assert compare([], [1.0, 2.0], "<=", 60, 0.5).verdict == "insufficient data"


def test_score_rewards_margin_and_gives_nothing_for_failed_or_inconclusive() -> None:
    assert parse_objective("<= 60") == ("<=", 60.0) and parse_objective(">= 80% of 300") is None
    assert margin("<=", 60, 6) == pytest.approx(0.9) and margin(">=", 99.9, 99.95, "percent") == pytest.approx(0.5)
    ok = {"outcome": "pass", "measured": 6.0, "objective": "<= 60", "unit": "seconds"}
    assert run_score([ok]) == 95.0
    assert run_score([ok, {"outcome": "fail", "measured": 70, "objective": "<= 60"}]) == 47.5
    assert run_score([ok, {"outcome": "inconclusive", "measured": None, "objective": "<= 60"}]) == 47.5
    assert run_score([]) is None
