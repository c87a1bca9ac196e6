"""RTO arithmetic on recorded series: the cases that fool naive implementations."""

from __future__ import annotations

import pytest

from probes.recovery import RecoveryStatus, recovery_time


def series(pattern: str, start: float = 100.0, step: float = 1.0) -> list[tuple[float, bool]]:
    """'+' holds, '-' broken, ' ' no sample (a scrape gap): one character per step."""
    return [(start + i * step, ch == "+") for i, ch in enumerate(pattern) if ch != " "]


def test_recovers_after_a_break() -> None:
    r = recovery_time(series("+++-----++++++++++++"), fault_start=100.0, stabilization_s=5)
    assert r.status is RecoveryStatus.RECOVERED
    assert r.rto_s == 8.0  # broken from t=103, holds from t=108 onwards
    assert r.broke_at == 103.0


def test_never_recovered() -> None:
    r = recovery_time(series("++-----------------"), fault_start=100.0, stabilization_s=5)
    assert r.status is RecoveryStatus.NEVER_RECOVERED
    assert r.rto_s is None


def test_flapping_counts_from_the_last_stable_start() -> None:
    r = recovery_time(series("-+-++-+++-++++++++++"), fault_start=100.0, stabilization_s=5)
    assert r.status is RecoveryStatus.RECOVERED
    assert r.rto_s == 10.0


def test_flapping_that_never_stabilises_is_not_recovered() -> None:
    r = recovery_time(series("-+-++-+++-++++-+++-+-"), fault_start=100.0, stabilization_s=5)
    assert r.status is RecoveryStatus.NEVER_RECOVERED


def test_flapping_that_ends_holding_is_inconclusive() -> None:
    # The last samples hold: it may be recovering, but the run ended before we could tell.
    r = recovery_time(series("-+-++-+++-++++-+++-+"), fault_start=100.0, stabilization_s=5)
    assert r.status is RecoveryStatus.INCONCLUSIVE


def test_scrape_gap_cannot_be_part_of_a_stable_window() -> None:
    # holds at 105..107, gap 108..111, holds 112..: the window must start after the gap
    r = recovery_time(series("--+++-" + "+++    " + "++++++++"), fault_start=100.0, stabilization_s=5, max_gap_s=2)
    assert r.status is RecoveryStatus.RECOVERED
    assert r.rto_s == 13.0


def test_gaps_and_no_recovery_is_inconclusive_not_never() -> None:
    r = recovery_time(series("---      ---      ---"), fault_start=100.0, stabilization_s=5, max_gap_s=2)
    assert r.status is RecoveryStatus.INCONCLUSIVE
    assert "scrape gap" in r.reason


def test_recovery_starting_before_the_window_ends_is_inconclusive() -> None:
    r = recovery_time(series("-----+++"), fault_start=100.0, stabilization_s=5)
    assert r.status is RecoveryStatus.INCONCLUSIVE
    assert "stabilisation window" in r.reason


def test_a_recovery_cut_short_by_the_run_bounds_the_rto_from_below_unless_a_gap_could_hide_an_earlier_one() -> None:
    r = recovery_time(series("-----+++"), fault_start=100.0, stabilization_s=5)
    assert (r.status, r.at_least_s) == (RecoveryStatus.INCONCLUSIVE, 5.0)
    # holds 102-104, a gap, holds again from 108: the gap could hide a window that began at 102
    gapped = recovery_time(series("--+++   +++"), fault_start=100.0, stabilization_s=5, max_gap_s=2)
    assert (gapped.status, gapped.at_least_s) == (RecoveryStatus.INCONCLUSIVE, None)


def test_condition_that_never_broke_is_rto_zero() -> None:
    r = recovery_time(series("+" * 20), fault_start=100.0, stabilization_s=5)
    assert (r.status, r.rto_s) == (RecoveryStatus.RECOVERED, 0.0)


def test_never_broke_but_gaps_could_hide_a_break() -> None:
    r = recovery_time(series("+++       +++++++++"), fault_start=100.0, stabilization_s=5, max_gap_s=2)
    assert r.status is RecoveryStatus.INCONCLUSIVE


def test_no_samples_is_inconclusive() -> None:
    r = recovery_time([], fault_start=100.0, stabilization_s=5)
    assert r.status is RecoveryStatus.INCONCLUSIVE


def test_a_healthy_baseline_with_a_blip_does_not_count_towards_the_rto() -> None:
    pre = series("++++-+++++", start=90.0)  # 90 % held before the fault; the blip is not the fault's
    r = recovery_time(pre + series("+" * 10), fault_start=100.0, stabilization_s=5)
    assert (r.status, r.rto_s) == (RecoveryStatus.RECOVERED, 0.0)


def test_a_baseline_already_out_of_slo_is_inconclusive_not_an_rto() -> None:
    # p95 above 500 ms before anything was broken: "recovering" would time the baseline
    pre = series("--+--+----", start=90.0)
    r = recovery_time(pre + series("---" + "+" * 10), fault_start=100.0, stabilization_s=5)
    assert r.status is RecoveryStatus.INCONCLUSIVE and r.rto_s is None
    assert "only 20 % of the 10 samples before the fault" in r.reason
    assert r.settled, "nothing after the fault can change it: the probe stops watching (probes.activities)"
    assert not recovery_time(series("++++++++" + "---"), fault_start=100.0, stabilization_s=5).settled


def test_too_short_a_baseline_is_not_judged() -> None:
    pre = series("--", start=98.0)  # the fault came 2 s into the run
    r = recovery_time(pre + series("-" + "+" * 10), fault_start=100.0, stabilization_s=5)
    assert (r.status, r.rto_s) == (RecoveryStatus.RECOVERED, 1.0)


def test_sub_second_resolution() -> None:
    r = recovery_time(series("--" + "+" * 20, step=0.5), fault_start=100.0, stabilization_s=5, max_gap_s=1)
    assert r.rto_s == pytest.approx(1.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        recovery_time([], fault_start=0, stabilization_s=-1)


@pytest.mark.parametrize("run_started_before_fault_s", [60.0, None])
def test_the_recovery_probe_stops_watching_once_the_baseline_decided(
        monkeypatch: pytest.MonkeyPatch, run_started_before_fault_s: float | None) -> None:
    """A 30-minute watch of a data flow that was out of SLO before the fault would change nothing: the probe
    returns at once, reading the baseline from the run's start as the judge does (a quiet HA run watched for
    8 minutes on 2026-12-01 and 6.5 on 2026-12-02: the probe's window began at the fault, so it never had a
    baseline). Only Prometheus is faked: the real rto_data_flow reads lag and p95 since the run's start."""
    import time

    from probes import activities, prom
    from probes.slo import load_catalogue

    fault = time.time()  # so the 1810 s watch has not run out
    sleeps: list[float] = []

    def range_query(url: str, query: str, start: float, end: float, step_s: float = 1.0) -> list[prom.Series]:
        points = [(t, 1.5 if "quantile" in query else 0.0) for t in range(int(start), int(end) + 1)]
        return [prom.Series({}, [(float(t), v) for t, v in points])]  # p95 1.5 s throughout: out of SLO

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 3:
            raise TimeoutError("the probe kept watching a run its baseline had already decided")

    cat = load_catalogue()
    settings = type("T", (), {"run_started_at": None if run_started_before_fault_s is None
                              else fault - run_started_before_fault_s})()
    monkeypatch.setattr(prom, "range_query", range_query)
    monkeypatch.setattr(activities, "_fault_window", lambda s: (fault, None))
    monkeypatch.setattr(activities.time, "sleep", sleep)
    monkeypatch.setattr(activities.ProbeEndpoints, "from_configuration", classmethod(
        lambda cls, c: type("S", (), {"catalogue": lambda self: cat, "view": lambda self: cat.view("local"),
                                       "prometheus_url": "http://prometheus.invalid", "settings": settings})()))
    if run_started_before_fault_s is None:  # a run start unknown (an ad-hoc probe): no baseline, keeps watching
        with pytest.raises(TimeoutError):
            activities.recovery_seconds("data_flow", observe_s=1810)
        return
    out = activities.recovery_seconds("data_flow", observe_s=1810)
    assert out["status"] == "inconclusive" and "before the fault" in out["reason"] and not sleeps, out
