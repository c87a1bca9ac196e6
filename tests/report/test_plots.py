"""Gaps stay gaps: the line-splitting rule of the plots."""

from __future__ import annotations

import math

from resilience.report.plots import render_plots, split_segments
from tests.report.conftest import T0, series_doc


def test_contiguous_samples_are_one_segment() -> None:
    pts: list[tuple[float, float | None]] = [(float(t), 1.0) for t in range(10)]
    assert split_segments(pts, 1.0) == [[(float(t), 1.0) for t in range(10)]]


def test_split_where_samples_are_more_than_two_steps_apart() -> None:
    pts: list[tuple[float, float | None]] = [(0.0, 1.0), (1.0, 1.0), (3.0, 1.0), (6.1, 2.0), (7.0, 2.0)]
    # 1 -> 3 is exactly two steps: kept; 3 -> 6.1 is more: split
    assert split_segments(pts, 1.0) == [[(0.0, 1.0), (1.0, 1.0), (3.0, 1.0)], [(6.1, 2.0), (7.0, 2.0)]]


def test_null_and_nan_values_split_and_are_dropped() -> None:
    pts: list[tuple[float, float | None]] = [(0.0, 1.0), (1.0, None), (2.0, 1.0), (3.0, math.nan), (4.0, 5.0)]
    assert split_segments(pts, 1.0) == [[(0.0, 1.0)], [(2.0, 1.0)], [(4.0, 5.0)]]


def test_unsorted_input_is_sorted() -> None:
    pts: list[tuple[float, float | None]] = [(2.0, 3.0), (0.0, 1.0), (1.0, 2.0)]
    assert split_segments(pts, 1.0) == [[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]]


def test_render_plots_without_series_json() -> None:
    plots = render_plots(None, T0, T0 + 60, None)
    assert [p.png_b64 for p in plots] == [None] * 5
    assert all(p.missing for p in plots)


def test_render_plots_with_missing_step_and_bad_points() -> None:
    doc = series_doc()
    del doc["step_s"]
    doc["series"]["consumer_lag"]["points"][5:8] = [["x", 1], [T0 + 6, "nan"], None]
    plots = render_plots(doc, None, None, {"start": T0 + 30, "end": None})
    assert all(p.png_b64 for p in plots)
    lag = plots[0]
    assert lag.notes and "gap" in lag.notes[0]
