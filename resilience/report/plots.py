"""Plots of a run's time series, as small PNG images for embedding in the report.

Drawn with matplotlib's Agg canvas directly (no pyplot, so no global backend state).
Every plot shares the x axis — seconds since the run started — so they line up on the
page; the fault window is shaded, SLO thresholds are dashed lines, and a gap in the
samples stays a gap: lines are split where two samples are more than two steps apart.
"""

from __future__ import annotations

import base64
import io
import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from resilience.report.model import as_dict, as_list, num

logger = logging.getLogger(__name__)

__all__ = ["PLOTS", "Plot", "PlotSpec", "SeriesSpec", "render_plots", "split_segments"]

FIGSIZE = (10.0, 2.3)
DPI = 100
FAULT_COLOUR = "#e8590c"
#: A threshold this many times above the highest sample is drawn as an "off scale" note, not a line.
OFF_SCALE_FACTOR = 4.0


@dataclass(frozen=True)
class SeriesSpec:
    """One line of a plot: the series.json key, its legend label, its colour."""

    key: str
    label: str
    colour: str


@dataclass(frozen=True)
class PlotSpec:
    """One plot: its title, the series drawn, and how values are shown (``scale`` × value, in ``unit``)."""

    key: str
    title: str
    series: tuple[SeriesSpec, ...]
    unit: str
    scale: float = 1.0
    integer: bool = False


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("consumer_lag", "Consumer lag", (SeriesSpec("consumer_lag", "lag", "#1c7ed6"),), "events"),
    PlotSpec("latency", "p95 latency",
             (SeriesSpec("latency_p95_s", "processing", "#1c7ed6"), SeriesSpec("e2e_p95_s", "end-to-end", "#7048e8")),
             "ms", scale=1000.0),
    PlotSpec("throughput", "Throughput (processed)",
             (SeriesSpec("throughput_eps", "processed", "#1c7ed6"),), "events/s"),
    PlotSpec("error_ratio", "Error ratio", (SeriesSpec("error_ratio", "failed / consumed", "#1c7ed6"),), "%",
             scale=100.0),
    PlotSpec("ready_replicas", "Ready replicas", (SeriesSpec("ready_replicas", "ready", "#1c7ed6"),), "replicas",
             integer=True),
)


@dataclass
class Plot:
    """A rendered plot: a base64 PNG (``None`` when there was nothing to draw) and notes for its caption."""

    key: str
    title: str
    unit: str
    png_b64: str | None
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def split_segments(points: list[tuple[float, float | None]], step_s: float) -> list[list[tuple[float, float]]]:
    """Split samples into runs with no gap, so a line is never drawn across missing data.

    A new segment starts where two consecutive samples are more than ``2 × step_s``
    apart, and at every sample with no value (``None`` or not finite).

    Args:
        points: ``(time, value)`` pairs, in any order.
        step_s: the sampling step in seconds.

    Returns:
        The segments, each a non-empty list of ``(time, value)`` in time order.
    """
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    last_t: float | None = None
    for t, v in sorted(points, key=lambda p: p[0]):
        if v is None or not math.isfinite(v):
            if current:
                segments.append(current)
            current, last_t = [], None
            continue
        if last_t is not None and t - last_t > 2 * step_s and current:
            segments.append(current)
            current = []
        current.append((t, v))
        last_t = t
    if current:
        segments.append(current)
    return segments


def _points(doc: dict[str, Any]) -> list[tuple[float, float | None]]:
    out: list[tuple[float, float | None]] = []
    for p in as_list(doc.get("points")):
        if isinstance(p, list | tuple) and len(p) >= 2:
            t = num(p[0])
            if t is not None:
                out.append((t, num(p[1])))
    return out


def _step(series_doc: dict[str, Any], all_points: list[list[tuple[float, float | None]]]) -> float:
    step = num(series_doc.get("step_s"))
    if step and step > 0:
        return step
    deltas = sorted(b[0] - a[0] for pts in all_points for a, b in itertools.pairwise(pts) if b[0] > a[0])
    return deltas[len(deltas) // 2] if deltas else 1.0


def _fmt_value(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.3g}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def render_plots(series_doc: dict[str, Any] | None, t0: float | None, t_end: float | None,
                 fault: dict[str, Any] | None, asked_eps: float | None = None) -> list[Plot]:
    """Render every plot of :data:`PLOTS` from series.json.

    Args:
        series_doc: series.json (``None`` when missing: every plot says so).
        t0: run start, epoch seconds (x = 0); the first sample when ``None``.
        t_end: run end, epoch seconds; the last sample when ``None``.
        fault: run.json's ``fault`` (``start``, ``end`` epoch seconds; ``end`` may be missing).
        asked_eps: the load asked, drawn as a reference on the throughput plot.

    Returns:
        One :class:`Plot` per spec, in order; a plot with no data has ``png_b64`` ``None``.
    """
    doc = series_doc or {}
    series = as_dict(doc.get("series"))
    why_missing = as_dict(doc.get("missing"))
    thresholds = as_dict(doc.get("thresholds"))
    loaded = {k: _points(as_dict(v)) for k, v in series.items() if isinstance(k, str)}
    step = _step(doc, list(loaded.values()))
    times = [t for pts in loaded.values() for t, _ in pts]
    start = t0 if t0 is not None else (min(times) if times else 0.0)
    end = t_end if t_end is not None else (max(times) if times else start + 1.0)
    if times:
        end = max(end, max(times))
    x_max = max(end - start, 1.0)
    plots = []
    for spec in PLOTS:
        plot = Plot(spec.key, spec.title, spec.unit, None)
        present: list[tuple[SeriesSpec, list[tuple[float, float | None]]]] = []
        for s in spec.series:
            if series_doc is None:
                plot.missing.append(f"{s.label}: series.json is missing")
            elif s.key not in loaded:
                reason = why_missing.get(s.key)
                plot.missing.append(f"{s.label}: not recorded" + (f" ({reason})" if reason else ""))
            elif not any(v is not None for _, v in loaded[s.key]):
                plot.missing.append(f"{s.label}: no samples")
            else:
                present.append((s, loaded[s.key]))
        if present:
            marks = [as_dict(m) for k in (s.key for s in spec.series) for m in as_list(thresholds.get(k))]
            refs = [("asked", asked_eps)] if spec.key == "throughput" and asked_eps else []
            try:
                plot.png_b64 = _draw(spec, present, marks, refs, start, x_max, step, fault, plot.notes)
            except Exception as exc:  # a plot must never take the whole report down
                logger.exception("plot %s failed", spec.key)
                plot.missing.append(f"plot failed: {exc}")
        plots.append(plot)
    return plots


def _draw(spec: PlotSpec, present: list[tuple[SeriesSpec, list[tuple[float, float | None]]]],
          marks: list[dict[str, Any]], refs: list[tuple[str, float]], t0: float, x_max: float, step: float,
          fault: dict[str, Any] | None, notes: list[str]) -> str:
    with mpl.rc_context({"text.parse_math": False, "font.size": 8, "axes.titlesize": 9,
                         "font.family": "DejaVu Sans", "svg.fonttype": "none"}):
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        fig.subplots_adjust(left=0.06, right=0.99, top=0.9, bottom=0.19)
        data_max = 0.0
        data_min = 0.0
        gap_notes: dict[str, list[str]] = {}
        shaded: set[tuple[float, float]] = set()
        for s, pts in present:
            segments = split_segments(pts, step)
            gaps = [(a[-1][0] - t0, b[0][0] - t0) for a, b in itertools.pairwise(segments)]
            gap_s = sum(g1 - g0 - step for g0, g1 in gaps)
            if gaps:
                word = "gap" if len(gaps) == 1 else "gaps"
                gap_notes.setdefault(f"{len(gaps)} {word} in the samples ({gap_s:.0f} s without data)", []).append(
                    s.label)
            for g in gaps:
                if g not in shaded and g[1] - g[0] > 2 * step:
                    shaded.add(g)
                    ax.axvspan(g[0], g[1], facecolor="none", edgecolor="#ced4da", hatch="////", linewidth=0,
                               zorder=0)
            for i, seg in enumerate(segments):
                xs = [t - t0 for t, _ in seg]
                ys = [v * spec.scale for _, v in seg]
                data_max = max(data_max, *ys)
                data_min = min(data_min, *ys)
                style: dict[str, Any] = {"marker": ".", "markersize": 3} if len(seg) == 1 else {}
                ax.plot(xs, ys, color=s.colour, linewidth=1.4, label=s.label if i == 0 else None,
                        drawstyle="steps-post" if spec.integer else "default", **style)
        notes.extend(f"{', '.join(labels)}: {text}" for text, labels in gap_notes.items())
        # thresholds: dashed lines with labels, unless far above anything measured
        top = data_max
        seen: set[tuple[str, float]] = set()
        off_scale: list[str] = []
        for m in marks:
            value = num(m.get("value"))
            label = str(m.get("label") or "threshold")
            if value is None or (label, value) in seen:
                continue
            seen.add((label, value))
            y = value * spec.scale
            text = f"{label} {_fmt_value(y, spec.unit)}" + (" ms" if spec.unit == "ms" else "")
            if data_max > 0 and y > data_max * OFF_SCALE_FACTOR:
                off_scale.append(text)
                continue
            colour = "#f08c00" if "warn" in label.lower() else "#c92a2a"
            ax.axhline(y, color=colour, linestyle=(0, (5, 3)), linewidth=1.1)
            ax.annotate(text, xy=(0.005, y), xycoords=("axes fraction", "data"), xytext=(0, 2),
                        textcoords="offset points", color=colour, fontsize=7.5, va="bottom", ha="left")
            top = max(top, y)
        for label, value in refs:
            y = value * spec.scale
            ax.axhline(y, color="#868e96", linestyle=(0, (1, 2)), linewidth=1.1)
            ax.annotate(f"{label} {_fmt_value(y, spec.unit)}", xy=(0.005, y), xycoords=("axes fraction", "data"),
                        xytext=(0, 2), textcoords="offset points", color="#495057", fontsize=7.5, va="bottom")
            top = max(top, y)
        if off_scale:
            ax.text(0.995, 0.97, "off scale: " + ", ".join(off_scale) + " ↑", transform=ax.transAxes,
                    ha="right", va="top", fontsize=7.5, color="#868e96")
        top = top * 1.18 if top > 0 else 1.0
        if spec.integer:
            top = max(top, data_max + 0.8)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(min(0.0, data_min * 1.1), top)
        ax.set_xlim(0, x_max)
        _shade_fault(ax, fault, t0, x_max)
        ax.set_xlabel("seconds since run start", fontsize=7.5, color="#495057", labelpad=1)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _fmt_value(v, spec.unit)))
        ax.grid(axis="both", color="#e9ecef", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_color("#adb5bd")
        ax.tick_params(colors="#495057", length=3)
        if len(present) > 1 or refs:
            ax.legend(loc="upper left", bbox_to_anchor=(0.0, 1.13), ncol=4, fontsize=7.5, frameon=False,
                      handlelength=1.6, borderaxespad=0)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _shade_fault(ax: Any, fault: dict[str, Any] | None, t0: float, x_max: float) -> None:
    if not fault:
        return
    start = num(fault.get("start"))
    if start is None:
        return
    end = num(fault.get("end"))
    x0 = start - t0
    x1 = (end - t0) if end is not None else x_max
    ax.axvspan(x0, max(x1, x0), color=FAULT_COLOUR, alpha=0.12, linewidth=0, zorder=0)
    ax.axvline(x0, color=FAULT_COLOUR, linewidth=1.2, zorder=1)
    label = f"fault +{x0:.0f} s" + ("" if end is not None else " (not reverted)")
    ax.annotate(label, xy=(x0, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -2),
                textcoords="offset points", color=FAULT_COLOUR, fontsize=7.5, va="top", ha="left",
                fontweight="bold")
