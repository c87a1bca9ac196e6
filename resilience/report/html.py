"""Render a run's ``report.html`` and a gate's index page, both self-contained.

Self-contained means the file references nothing outside itself but the run directory's
own files (relative links to journal.json, ledger/ ...): CSS is inline, plots are base64
PNG. Every value taken from a run is HTML-escaped (Jinja2 autoescaping), so an
experiment title cannot inject markup.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from probes.verdict import Outcome
from resilience.report.model import (
    EXIT_CODES,
    RunFiles,
    ScenarioResult,
    as_dict,
    as_list,
    load_run_dir,
    num,
    parse_outcome,
)
from resilience.report.plots import render_plots
from resilience.score import gate_score

logger = logging.getLogger(__name__)

__all__ = ["MAX_LOST_IDS_SHOWN", "overall_outcome", "render_index", "render_report"]

TEMPLATES = Path(__file__).parent / "templates"
#: How many lost event ids the report lists before "and N more".
MAX_LOST_IDS_SHOWN = 50
#: How many lines of runner.log a crashed run's report shows.
LOG_TAIL_LINES = 40
#: How many not-passed SLOs a row of the gate index lists before "and N more".
INDEX_REASONS = 4
_RANK = {"fail": 0, "inconclusive": 1, "pass": 2}
_LINKED_FILES = ("summary.json", "run.json", "series.json", "journal.json", "ledger/", "recorded/", "runner.log")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["n"] = fmt_number
    env.filters["secs"] = fmt_seconds
    return env


def fmt_number(value: Any, digits: int = 3) -> str:
    """A number for people: thousands separators, ``digits`` significant digits, ``—`` for none."""
    f = num(value)
    if f is None:
        return "—" if value is None else str(value)
    if f == int(f) and abs(f) < 1e15:
        return f"{int(f):,}"
    if abs(f) >= 1000:
        return f"{f:,.0f}"
    if abs(f) >= 100:
        return f"{f:.1f}"
    return f"{f:.{digits}g}"


def fmt_seconds(value: Any) -> str:
    """A duration in seconds for people (``7.2 s``, ``3 min 05 s``), ``—`` for none."""
    f = num(value)
    if f is None:
        return "—"
    if abs(f) < 120:
        return f"{f:.1f} s" if f != int(f) else f"{int(f)} s"
    minutes, seconds = divmod(round(f), 60)
    return f"{minutes} min {seconds:02d} s"


def fmt_time(epoch: float | None) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SSZ`` (UTC), ``—`` for none."""
    if epoch is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def _link(href: str, run_dir: Path) -> dict[str, Any]:
    return {"name": href, "href": quote(href), "exists": (run_dir / href.rstrip("/")).exists()}


def _lost_colour(lost: float | None) -> str:
    if lost is None:
        return "inherit"
    return "var(--fail)" if lost > 0 else "var(--pass)"


def _report_context(files: RunFiles) -> dict[str, Any]:
    run, summary = files.run_doc, files.summary_doc
    outcome = files.outcome
    stated = parse_outcome(summary.get("outcome")) if files.summary is not None else None
    # the crash banner already says summary.json is missing
    notes = [p for p in files.problems if not (files.crashed and p.startswith("summary.json is missing"))]
    if files.summary is not None and stated is not outcome:
        notes.append(f"summary.json says {summary.get('outcome')!r} but its verdicts say {outcome.value}: "
                     f"the report shows {outcome.value}")
    verdicts = []
    for v in files.verdicts:
        o = parse_outcome(v.get("outcome"))
        verdicts.append({"slo": v.get("slo") or "?", "outcome": o.value if o else str(v.get("outcome")),
                         "measured": v.get("measured"), "objective": v.get("objective") or "—",
                         "unit": v.get("unit") or "", "reason": v.get("reason") or ""})
    verdicts.sort(key=lambda v: _RANK.get(str(v["outcome"]), 1))  # stable: catalogue order within an outcome
    counts = {o.value: sum(1 for v in verdicts if v["outcome"] == o.value) for o in Outcome}

    load_asked = as_dict(run.get("load"))
    load_done = as_dict(summary.get("load"))
    asked_eps = num(load_done.get("asked_eps")) or num(load_asked.get("rate_eps"))
    achieved_eps = num(load_done.get("achieved_eps"))
    fault = as_dict(run.get("fault")) or None
    t0 = files.started_at
    fault_view = None
    if fault:
        start, end = num(fault.get("start")), num(fault.get("end"))
        fault_view = {"name": fault.get("name") or "?", "faults": [str(f) for f in as_list(fault.get("faults"))],
                      "start": fmt_time(start), "end": fmt_time(end), "reverted": end is not None,
                      "start_rel": (start - t0) if start is not None and t0 is not None else None,
                      "end_rel": (end - t0) if end is not None and t0 is not None else None,
                      "length": (end - start) if start is not None and end is not None else None}

    loss = as_dict(summary.get("data_loss"))
    lost_ids = [str(i) for i in as_list(loss.get("lost_ids"))]
    rto = as_dict(summary.get("rto"))
    exit_code = summary.get("exit_code") if files.summary is not None else None
    log_tail: list[str] = []
    if files.crashed and (files.run_dir / "runner.log").is_file():
        try:
            lines = (files.run_dir / "runner.log").read_text(encoding="utf-8", errors="replace").splitlines()
            log_tail = lines[-LOG_TAIL_LINES:]
        except OSError as exc:
            notes.append(f"runner.log is unreadable: {exc}")

    plots = render_plots(files.series, t0, files.ended_at, fault, asked_eps)
    return {
        "run_id": run.get("run_id") or files.run_dir.name,
        "scenario": files.scenario,
        "title": run.get("title") or "",
        "experiment": run.get("experiment") or "",
        "outcome": outcome.value,
        "crashed": files.crashed,
        "run_error": run.get("error") or "",
        "exit_code": exit_code if exit_code is not None else "—",
        "score": num(summary.get("score")),
        "history_note": str(as_dict(summary.get("history")).get("note") or ""),
        "target": files.target,
        "profile": as_dict(run.get("stack")).get("profile") or "",
        "load": {"shape": load_asked.get("shape") or load_done.get("shape") or "—",
                 "asked_eps": asked_eps, "achieved_eps": achieved_eps,
                 "achieved_pct": (100.0 * achieved_eps / asked_eps) if achieved_eps is not None and asked_eps
                 else None,
                 "duration_s": num(load_asked.get("duration_s")),
                 "acknowledged": load_done.get("acknowledged"), "failed": load_done.get("failed")},
        "seed": load_asked.get("seed", "—"),
        "mix": ", ".join(f"{k} {v}" for k, v in as_dict(load_asked.get("mix")).items()),
        "started": fmt_time(files.started_at),
        "ended": fmt_time(files.ended_at),
        "duration_s": files.duration_s,
        "fault": fault_view,
        "verdicts": verdicts,
        "counts": counts,
        "errors": [str(e) for e in as_list(summary.get("errors"))],
        "rto": [{"name": name, "status": d.get("status") or "—", "rto_s": d.get("rto_s"),
                 "reason": d.get("reason") or ""}
                for name, d in (("replicas ready", as_dict(rto.get("replicas_ready"))),
                                ("data flow", as_dict(rto.get("data_flow"))))],
        "has_rto": bool(rto),
        "has_loss": bool(loss),
        "loss": {k: loss.get(k) for k in ("status", "lost", "rpo_s", "lost_before_fault", "acknowledged", "stored",
                                          "duplicated", "late")},
        "lost_colour": _lost_colour(num(loss.get("lost"))),
        "lost_ids": lost_ids[:MAX_LOST_IDS_SHOWN],
        "lost_ids_more": max(0, len(lost_ids) - MAX_LOST_IDS_SHOWN),
        "lost_ids_truncated": bool(loss.get("lost_ids_truncated")),
        "notes": notes,
        "log_tail": log_tail,
        "plots": plots,
        "links": [_link(name, files.run_dir) for name in _LINKED_FILES],
        "generated": fmt_time(time.time()),
    }


def render_report(run_dir: Path) -> Path:
    """Write ``report.html`` into a run directory, from its run.json, summary.json and series.json.

    Any of the three may be missing or broken: the report says what is missing. A run
    without summary.json crashed before it was judged: the report says so at the top
    and shows the outcome as inconclusive.

    Args:
        run_dir: the run directory (``docs/run-directory.md``).

    Returns:
        The path of the report written (``run_dir / "report.html"``).

    Raises:
        NotADirectoryError: ``run_dir`` is not a directory.
        OSError: the report could not be written.
    """
    run_dir = Path(run_dir)
    files = load_run_dir(run_dir)
    html = _env().get_template("report.html.tmpl").render(**_report_context(files))
    out = run_dir / "report.html"
    out.write_text(html, encoding="utf-8")
    logger.info("report for %s (%s) written to %s", files.scenario, files.outcome.value, out)
    return out


def overall_outcome(results: list[ScenarioResult]) -> Outcome:
    """The gate's outcome: fail if any scenario failed, else inconclusive if any was (or there were none)."""
    if any(r.outcome is Outcome.FAIL for r in results):
        return Outcome.FAIL
    if not results or any(r.outcome is not Outcome.PASS for r in results):
        return Outcome.INCONCLUSIVE
    return Outcome.PASS


def render_index(results: list[ScenarioResult], path: Path, settled: list[str] | None = None,
                 skipped: list[str] | None = None) -> Path:
    """Write a gate's index page: the overall outcome, one row per scenario, a link to each report.

    Links are relative to ``path``'s directory, so the index and the run directories can
    be moved together (a CI artifact).

    Args:
        results: the scenarios of the gate, in the order to show.
        path: the HTML file to write (its directory is created).
        settled: what the gate did to the target between scenarios (``GateResult.settled``), listed
            under the table: a reader must know the stack was brought back mid-gate.
        skipped: experiments the gate did not run because the service lacks what they need
            (``GateResult.skipped``, "name: why"), listed under the table.

    Returns:
        ``path``.

    Raises:
        OSError: the page could not be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    rows = []
    for r in results:
        report = r.report_path.resolve()
        rel = Path(os.path.relpath(report, base)).as_posix()
        rows.append({"scenario": r.scenario, "title": r.title, "target": r.target, "outcome": r.outcome.value,
                     "exit_code": r.exit_code, "duration_s": r.duration_s, "crashed": r.crashed,
                     "rto_replicas_ready_s": r.rto_replicas_ready_s, "rto_data_flow_s": r.rto_data_flow_s,
                     "rpo_s": r.rpo_s, "lost": r.lost, "failing": r.failing[:INDEX_REASONS],
                     "inconclusive": r.inconclusive[:max(0, INDEX_REASONS - len(r.failing))],
                     "more": max(0, len(r.failing) + len(r.inconclusive) - INDEX_REASONS),
                     "href": quote(rel), "report_exists": report.is_file(), "run_dir": r.run_dir.name,
                     "score": r.score, "comparisons": [c for c in r.comparisons if c.get("verdict") != "no change"],
                     "unchanged": sum(1 for c in r.comparisons if c.get("verdict") == "no change"),
                     "compared": bool(r.comparisons)})
    outcome = overall_outcome(results)
    counts = {o.value: sum(1 for r in results if r.outcome is o) for o in Outcome}
    regressed = sum(1 for r in results if r.regressed)
    if regressed and outcome is Outcome.PASS:
        outcome = Outcome.FAIL  # a regression against the baseline fails the gate (docs/report.md)
    html = _env().get_template("index.html.tmpl").render(
        outcome=outcome.value, exit_code=EXIT_CODES[outcome], rows=rows, counts=counts, regressed=regressed,
        score=gate_score(r.score for r in results), compared=any(r.comparisons for r in results),
        total_s=sum(r.duration_s or 0.0 for r in results), generated=fmt_time(time.time()), settled=settled or [],
        skipped=skipped or [])
    path.write_text(html, encoding="utf-8")
    logger.info("gate index (%s, %d scenarios) written to %s", outcome.value, len(results), path)
    return path
