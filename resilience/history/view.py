"""``resilience history``: the runs as a table in the terminal and as trend plots in ``history.html``.

The page is self-contained like a run's report (inline CSS, plots as base64 PNG). Per scenario it
draws the resilience score and every SLO the runs measured — recovery times, RPO, lost events,
peak consumer lag, p95 latencies, availability — one point per run over time: blue passed, red
failed, grey hollow inconclusive (drawn only where a value exists); a run that never recovered is a
red triangle at the top. The objective is the dashed line, and a change of release (``release``:
``RESILIENCE_RELEASE`` or the service version) is a dotted vertical line with the new release's name.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from resilience.history.store import RunRow
from resilience.report.html import fmt_number, fmt_seconds, fmt_time
from resilience.score import parse_objective

__all__ = ["TREND_SLOS", "print_table", "render_html", "write_html"]

TEMPLATES = Path(__file__).parent / "templates"
REPORT_TEMPLATES = Path(__file__).resolve().parent.parent / "report" / "templates"
#: The SLOs plotted first, in this order (then any other the runs measured).
TREND_SLOS = ("rto_replicas_ready", "rto_data_flow", "patroni_failover", "rpo", "data_loss", "consumer_lag_critical",
              "consumer_lag_warning", "latency_p95", "latency_p95_end_to_end", "availability", "error_rate")
LABELS = {"rto_replicas_ready": "RTO: replicas ready", "rto_data_flow": "RTO: data flowing",
          "patroni_failover": "Patroni failover", "rpo": "RPO", "data_loss": "Lost events",
          "consumer_lag_critical": "Peak consumer lag", "consumer_lag_warning": "Peak consumer lag (warning SLO)",
          "latency_p95": "p95 processing latency", "latency_p95_end_to_end": "p95 end-to-end latency",
          "availability": "Availability", "error_rate": "Error ratio", "score": "Resilience score"}
COLOURS = {"pass": "#1c7ed6", "fail": "#cf222e", "inconclusive": "#8c959f"}
FIGSIZE = (10.0, 2.4)


def _cell(row: RunRow, slo: str, seconds: bool = False) -> str:
    v = row.values.get(slo)
    if v is None:
        return "—" if slo not in row.values else "?"
    if math.isinf(v):
        return "never"
    return fmt_seconds(v) if seconds else fmt_number(v)


def print_table(console: Console, rows: Sequence[RunRow], scenario: str | None) -> None:
    """The runs, newest first: outcome, score, the headline numbers, release."""
    table = Table(title=f"Run history{' of ' + scenario if scenario else ''}", title_justify="left")
    for name, justify in (("started (UTC)", "left"), ("scenario", "left"), ("outcome", "left"), ("score", "right"),
                          ("RTO ready", "right"), ("RTO flow", "right"), ("RPO", "right"), ("lost", "right"),
                          ("peak lag", "right"), ("p95 e2e", "right"), ("release", "left"), ("note", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "note")  # type: ignore[arg-type]
    colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
    for r in rows:
        lag = r.values.get("consumer_lag_critical", r.values.get("consumer_lag_warning"))
        p95 = r.values.get("latency_p95_end_to_end")
        table.add_row(
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.started_at)), r.scenario,
            f"[{colour.get(r.outcome, 'white')}]{r.outcome}[/]", "—" if r.score is None else f"{r.score:g}",
            _cell(r, "rto_replicas_ready", True), _cell(r, "rto_data_flow", True), _cell(r, "rpo", True),
            _cell(r, "data_loss"), "—" if lag is None else fmt_number(lag),
            "—" if p95 is None else f"{1000 * p95:.0f} ms", (r.release or "—")[:28],
            (r.aborted_by or ("trial of " + r.trial_group if r.trial_group else ""))[:60])
    console.print(table)


def _x(epoch: float) -> float:
    """Matplotlib's date number of an epoch time (UTC)."""
    return float(date2num(datetime.fromtimestamp(epoch, UTC)))


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _trend(rows: list[RunRow], slo: str) -> dict[str, Any] | None:
    """One plot: this SLO's value per run over time (rows oldest first)."""
    raw = [(r, r.score if slo == "score" else r.values.get(slo)) for r in rows]
    pts: list[tuple[RunRow, float]] = [(r, float(v)) for r, v in raw if v is not None]
    if not pts:
        return None
    fig = Figure(figsize=FIGSIZE, dpi=100)
    ax = fig.add_subplot()
    finite = [v for _, v in pts if math.isfinite(v)]
    top = max(finite) if finite else 1.0
    objective = None if slo == "score" else next((parse_objective(r.objectives.get(slo)) for r, _ in reversed(pts)
                                                  if parse_objective(r.objectives.get(slo))), None)
    if objective is not None:
        top = max(top, objective[1])
    ceiling = top * 1.15 if top > 0 else 1.0
    for outcome, colour in COLOURS.items():
        xs = [_x(r.started_at) for r, v in pts
              if (r.outcome if slo == "score" else r.outcomes.get(slo)) == outcome and math.isfinite(v)]
        ys = [v for r, v in pts if (r.outcome if slo == "score" else r.outcomes.get(slo)) == outcome
              and math.isfinite(v)]
        if xs:
            ax.scatter(xs, ys, s=22, zorder=3, label=outcome,
                       facecolors="none" if outcome == "inconclusive" else colour, edgecolors=colour)
    never = [_x(r.started_at) for r, v in pts if math.isinf(v)]
    if never:
        ax.scatter(never, [ceiling * 0.97] * len(never), marker="^", s=40, color=COLOURS["fail"], zorder=3,
                   label="never recovered")
    line = [(_x(r.started_at), v) for r, v in pts if math.isfinite(v)]
    if len(line) > 1:
        ax.plot([x for x, _ in line], [y for _, y in line], color="#adb5bd", linewidth=0.8, zorder=2)
    if objective is not None:
        ax.axhline(objective[1], color="#cf222e", linestyle="--", linewidth=1)
        ax.annotate(f"objective {objective[0]} {objective[1]:g}", (0.005, objective[1]),
                    xycoords=("axes fraction", "data"), fontsize=8, color="#cf222e", va="bottom")
    previous = None
    for r, _ in pts:
        if r.release != previous and previous is not None:
            x = _x(r.started_at)
            ax.axvline(x, color="#6e7781", linestyle=":", linewidth=1)
            ax.annotate(str(r.release or "?")[:24], (x, 0.98), xycoords=("data", "axes fraction"), fontsize=7,
                        rotation=90, va="top", ha="right", color="#57606a")
        previous = r.release
    low = min([*finite, *([objective[1]] if objective else [])], default=0.0)
    if low > 0.5 * top and top > 0:  # availability near 100 %: zoom on the band the objective lives in
        bottom = low - 0.2 * max(top - low, 0.05 * top)
        ceiling = top + 0.2 * max(top - low, 0.05 * top)
    else:
        bottom = min(0.0, low)
    ax.set_ylim(bottom=bottom, top=ceiling)
    ax.xaxis_date(tz=UTC)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)
    ax.set_title(LABELS.get(slo, slo), loc="left", fontsize=10)
    unit = next((u for u in ("seconds",) if slo.startswith("rto_") or slo in ("rpo", "patroni_failover")), "")
    if unit:
        ax.set_ylabel("s")
    ax.legend(loc="upper right", fontsize=7, frameon=False, ncol=4)
    fig.tight_layout()
    return {"slo": slo, "title": LABELS.get(slo, slo), "png": _png(fig), "n": len(pts)}


def render_html(rows: Sequence[RunRow], scenario: str | None = None, store: str = "") -> str:
    """The history page for ``rows`` (any order)."""
    by_scenario: dict[str, list[RunRow]] = {}
    for r in sorted(rows, key=lambda r: r.started_at):
        by_scenario.setdefault(r.scenario, []).append(r)
    sections = []
    for name, runs in sorted(by_scenario.items()):
        measured = {s for r in runs for s, v in r.values.items() if v is not None}
        slos = [s for s in TREND_SLOS if s in measured] + sorted(measured - set(TREND_SLOS) - {"load_achieved"})
        plots = [p for p in (_trend(runs, s) for s in ["score", *slos]) if p]
        releases = list(dict.fromkeys(r.release or "unknown" for r in runs))
        counts = {o: sum(1 for r in runs if r.outcome == o) for o in ("pass", "fail", "inconclusive")}
        latest = runs[-1]
        sections.append({"scenario": name, "plots": plots, "n": len(runs), "counts": counts, "releases": releases,
                         "latest": {"outcome": latest.outcome, "score": latest.score, "at": fmt_time(latest.started_at),
                                    "release": latest.release or "—"},
                         "rows": [{"at": fmt_time(r.started_at), "outcome": r.outcome, "score": r.score,
                                   "release": r.release or "—", "run_id": r.run_id, "note": r.aborted_by or ""}
                                  for r in reversed(runs[-10:])]})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(TEMPLATES), str(REPORT_TEMPLATES)]),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["n"] = fmt_number
    return env.get_template("history.html.tmpl").render(
        title=f"History of {scenario}" if scenario else "Run history", sections=sections, store=store,
        total=len(rows), generated=fmt_time(time.time()))


def write_html(rows: Sequence[RunRow], path: Path, scenario: str | None = None, store: str = "") -> Path:
    """Write ``history.html`` to ``path`` (its directory is created); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(rows, scenario, store), encoding="utf-8")
    return path
