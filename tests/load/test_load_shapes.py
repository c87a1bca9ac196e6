"""Load shapes as data: target rate over time, users and per-user rate."""

from __future__ import annotations

import pytest

from loadtests.pacing import Pacer, RateControl, worker_share
from loadtests.shapes import SHAPES, LoadPlan


def test_steady_holds_the_rate_and_ends() -> None:
    plan = LoadPlan("steady", rate=200, duration=10, user_rate=50)
    assert plan.rate_at(0) == plan.rate_at(9.99) == 200
    assert plan.rate_at(10) is None
    assert plan.users_at(5) == (4, 50.0)
    assert plan.expected_events() == pytest.approx(2000)


def test_ramp_rises_linearly_then_holds() -> None:
    plan = LoadPlan("ramp", rate=100, duration=100)
    assert plan.rate_at(0) == pytest.approx(5)
    assert plan.rate_at(37.5) == pytest.approx(52.5)
    assert plan.rate_at(80) == pytest.approx(100)


def test_spike_surges_then_recovers() -> None:
    plan = LoadPlan("spike", rate=100, duration=100, spike_factor=4, user_rate=100)
    assert plan.rate_at(10) == 100
    assert plan.rate_at(40) == 400
    assert plan.users_at(40) == (4, 100.0)
    assert plan.rate_at(60) == 100
    assert plan.peak_rate() == 400


def test_users_split_evenly_over_workers() -> None:
    plan = LoadPlan("steady", rate=300, duration=10, user_rate=100)
    users, per_user = plan.users_at(0, multiple_of=2)  # type: ignore[misc]
    assert users == 4 and users * per_user == pytest.approx(300)


def test_every_shape_covers_its_whole_duration() -> None:
    for name, stages in SHAPES.items():
        assert sum(s.fraction for s in stages) == pytest.approx(1.0), name
        plan = LoadPlan(name, rate=10, duration=50)
        assert all(plan.rate_at(t / 10) for t in range(500)), name


@pytest.mark.parametrize(("kwargs", "word"), [({"shape": "zigzag"}, "shape"), ({"rate": 0}, "rate"),
                                              ({"rate": -3}, "rate"), ({"duration": 0}, "duration"),
                                              ({"user_rate": float("nan")}, "user_rate")])
def test_bad_plan_names_the_argument(kwargs: dict[str, object], word: str) -> None:
    args: dict[str, object] = {"shape": "steady", "rate": 10.0, "duration": 10.0, **kwargs}
    with pytest.raises(ValueError, match=word):
        LoadPlan(**args)  # type: ignore[arg-type]


def test_pacer_spaces_events_and_forgives_long_stalls(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("loadtests.pacing.time.monotonic", lambda: now[0])
    pacer = Pacer(RateControl(per_user_rate=10.0), max_lag=1.0)
    assert [pacer.delay() for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    now[0] += 0.5  # late by 0.2 s: catch up without waiting
    assert pacer.delay() == 0.0
    now[0] += 10.0  # a long stall: no burst of 100 events, restart the schedule
    assert pacer.delay() == 0.0 and pacer.delay() == pytest.approx(0.1)


def test_budget_and_worker_shares() -> None:
    assert [worker_share(1001, 2, i) for i in range(2)] == [501, 500]
    assert sum(worker_share(10, 3, i) for i in range(3)) == 10
    control = RateControl(budget=2)
    assert [control.take() for _ in range(3)] == [True, True, False] and control.exhausted
