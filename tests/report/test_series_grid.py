"""The plots sample the instants the RTO did: same step, a grid through the fault's start."""

from __future__ import annotations

import pytest

from probes import prom
from probes.evaluate import RTO_STEP_S
from probes.slo import load_catalogue
from resilience import series


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    seen: list[tuple[float, float]] = []

    def fake(url: str, query: str, start: float, end: float, step_s: float = 1.0) -> list[prom.Series]:
        seen.append((start, step_s))
        raise prom.ProbeError("not asked")

    monkeypatch.setattr(prom, "range_query", fake)
    return seen

def test_the_grid_goes_through_the_fault_start_at_the_rto_step(starts: list[tuple[float, float]]) -> None:
    cat = load_catalogue()
    view = cat.view("local")
    series.record_series(cat, view, "http://prometheus.invalid", 100.2, 200.0, anchor=130.45)
    assert starts and all(step == RTO_STEP_S for _, step in starts)
    start = starts[0][0]
    assert 100.2 <= start < 100.2 + RTO_STEP_S
    assert ((130.45 - start) / RTO_STEP_S) == pytest.approx(round((130.45 - start) / RTO_STEP_S))

def test_without_a_fault_the_grid_starts_at_the_run(starts: list[tuple[float, float]]) -> None:
    cat = load_catalogue()
    series.record_series(cat, cat.view("local"), "http://prometheus.invalid", 100.2, 200.0)
    assert starts[0][0] == 100.2
