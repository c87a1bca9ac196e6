"""Alert verdicts of a run, read from Prometheus' ``ALERTS`` series: did the alerts the experiment expects
fire during its fault, in time, and did none fire while the system was healthy?

Three kinds of verdict, beside the SLOs:

``alerts_evaluated``  the watchdog (``docs/alerts.yaml``: always firing while the rules are evaluated)
                      has its ``ALERTS`` series over the whole run. Without it nothing below can pass:
                      "no alert fired" and "no rule was loaded" look the same in ``ALERTS``.
``alerts_quiet``      no alert began firing in the baseline (the run's start to the fault's start). One
                      that did is **inconclusive**, never a pass: a false alarm, or a system that was not
                      healthy before the fault (the same rule as an RTO whose baseline is out of SLO; a
                      loaded machine's end-to-end p95 does that), and the run cannot tell which. One
                      already firing when the run started was carried over from before it (the previous
                      run's disaster, or the first minutes after Prometheus started): named in the
                      verdict, not held against this run; so is one already *pending* then (its
                      condition held before the run; it fires a moment later).
``alert:<name>``      the expected alert was firing at some point between the fault's start and
                      ``within_s`` seconds after it; the measured value is how long after the fault's start
                      it first fired. Never firing in that bound is a **fail** (the disaster's alert did
                      not see it); firing already at the fault's start is **inconclusive** (this run cannot
                      show the fault made it fire), as is a run that ended before the bound.

The same code judges offline: every query goes through :mod:`probes.prom`, recorded live and replayed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from probes import prom
from probes.evaluate import RunWindow
from probes.verdict import Outcome, Verdict

__all__ = ["WATCHDOG_MAX_GAP_S", "alert_verdicts", "run_entry", "unfired"]

#: Longest stretch of the run the watchdog may miss (rules are evaluated every second; a busy machine
#: delays one evaluation or a range-query step, not ten).
WATCHDOG_MAX_GAP_S = 10.0
STEP_S = 0.5


def run_entry(target: str, expected: list[dict[str, Any]], watchdog: str) -> dict[str, Any] | None:
    """What run.json records about alerts: judged on the local stack (which loads the rules) and wherever an
    experiment expects alerts; ``None`` otherwise (a cluster's Prometheus may run other rules)."""
    if target != "local" and not expected:
        return None
    return {"watchdog": watchdog, "expected": expected}


def _firing(name: str) -> str:
    return f'max(ALERTS{{alertname="{prom.escape_label(name)}", alertstate="firing"}})'


def unfired(url: str, fault_start: float, expected: list[dict[str, Any]], now: float) -> list[tuple[str, float]]:
    """The expected alerts that have not fired since ``fault_start`` and whose bound (``fault_start + within_s``)
    is still ahead of ``now``, with that bound: what a run must keep observing so that an alert that never
    fires is judged a fail, not "the run ended before the bound" (inconclusive)."""
    out = []
    for e in expected:
        name, bound = str(e["alert"]), fault_start + float(e["within_s"])
        if bound <= now:
            continue
        series = prom.range_query(url, f"{_firing(name)} or on() vector(0)", fault_start, max(now, fault_start + 1),
                                  step_s=STEP_S)
        if not any(v >= 1 for s in series for _, v in s.points):
            out.append((name, bound))
    return out


def alert_verdicts(url: str, window: RunWindow, entry: dict[str, Any]) -> list[Verdict]:
    """The ``alerts_evaluated``, ``alerts_quiet`` and ``alert:<name>`` verdicts of a run (see the module)."""
    watchdog = str(entry["watchdog"])
    expected = list(entry.get("expected") or [])
    evaluated = _evaluated(url, window, watchdog)
    out = [evaluated]
    if evaluated.outcome is not Outcome.PASS:
        reason = f"alert rules not evaluated: {evaluated.reason}"
        out.append(Verdict("alerts_quiet", Outcome.INCONCLUSIVE, None, "== 0", "alerts", reason))
        out += [Verdict(f"alert:{e['alert']}", Outcome.INCONCLUSIVE, None, f"<= {e['within_s']:g}",
                        "seconds", reason) for e in expected]
        return out
    out[0] = _with_fired(url, window, watchdog, evaluated)
    out.append(_quiet(url, window, watchdog))
    out += [_expected(url, window, str(e["alert"]), float(e["within_s"])) for e in expected]
    return out


def _with_fired(url: str, window: RunWindow, watchdog: str, evaluated: Verdict) -> Verdict:
    """``evaluated`` saying which alerts fired from the fault's start to the run's end, and when (seconds after the
    fault's start; expected or not): what the docs' table of alerts per experiment is made from."""
    if window.fault_start is None or window.end - window.fault_start < 1:
        return evaluated
    query = f'count by (alertname) (ALERTS{{alertstate="firing", alertname!="{prom.escape_label(watchdog)}"}})'
    try:
        series = prom.range_query(url, query, window.fault_start, window.end, step_s=STEP_S)
    except prom.ProbeError:  # nothing fired (the watchdog proved the rules were evaluated)
        series = []
    fired = {s.labels["alertname"]: round(s.points[0][0] - window.fault_start, 1)
             for s in series if s.points and s.labels.get("alertname")}
    text = ", ".join(f"{n} (+{t:g} s)" for n, t in sorted(fired.items(), key=lambda kv: kv[1]))
    return dataclasses.replace(evaluated, reason=f"firing after the fault's start: {text or 'none'}",
                               details={**evaluated.details, "fired_after_fault_s": fired})


def _evaluated(url: str, window: RunWindow, watchdog: str) -> Verdict:
    slo, text = "alerts_evaluated", f"{watchdog} firing throughout"
    try:
        series = prom.range_query(url, _firing(watchdog), window.start, window.end, step_s=STEP_S)
    except prom.ProbeError as exc:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, text, "seconds",
                       f"no {watchdog} alert in ALERTS during the run: the rules are not loaded or not evaluated "
                       f"({exc})")
    gap = min(s.max_gap(window.start, window.end) for s in series)
    if gap > WATCHDOG_MAX_GAP_S:
        return Verdict(slo, Outcome.INCONCLUSIVE, gap, text, "seconds",
                       f"{watchdog} missing for {gap:.1f} s of the run (more than {WATCHDOG_MAX_GAP_S:g} s): the "
                       f"rules were not evaluated throughout")
    return Verdict(slo, Outcome.PASS, gap, text, "seconds", "", {"longest_gap_s": round(gap, 1)})


def _quiet(url: str, window: RunWindow, watchdog: str) -> Verdict:
    slo, text = "alerts_quiet", "no alert begins firing before the fault"
    end = window.fault_start if window.fault_start is not None else window.end
    if end - window.start < 1:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, text, "alerts", "no healthy baseline before the fault")
    firing_query, active_query = (
        f'count by (alertname) (ALERTS{{alertstate{state}, alertname!="{prom.escape_label(watchdog)}"}}) '
        f"or on() vector(0)" for state in ('="firing"', '=~"firing|pending"'))
    try:
        series = prom.range_query(url, firing_query, window.start, end, step_s=STEP_S)
    except prom.ProbeError as exc:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, text, "alerts", str(exc))
    try:  # pending or firing: when the alert's condition became true (a run recorded before this has no such query)
        active = {s.labels["alertname"]: [t for t, _ in s.points]
                  for s in prom.range_query(url, active_query, window.start, end, step_s=STEP_S)
                  if s.labels.get("alertname") and s.points}
    except prom.ProbeError:
        active = {}
    began: dict[str, float] = {}
    carried: list[str] = []
    for s in series:
        name = s.labels.get("alertname")
        if not name or not s.points:
            continue
        # Each stretch in which the alert's condition held (pending, then firing) without a gap: one that
        # was already under way when the run started is carried over (an alert pending at the start fires
        # a moment later: the previous run's disaster, not this baseline's); one that began later and
        # fired began in the baseline, and so does a carried one that stopped and fired again.
        firing_times = [t for t, _ in s.points]
        stretches = _stretches(sorted(set(active.get(name, [])) | set(firing_times)))
        for begin, finish in stretches:
            fired = [t for t in firing_times if begin <= t <= finish]
            if not fired:
                continue
            if begin <= window.start + 2 * STEP_S:
                carried.append(name)
            else:
                began.setdefault(name, round(fired[0] - window.start, 1))
    details = {"baseline_s": round(end - window.start, 1), "carried_over": sorted(carried), "began": began}
    note = (f"already pending or firing when the run started (carried over): {', '.join(sorted(carried))}"
            if carried else "")
    if began:
        named = ", ".join(f"{n} (+{t:g} s)" for n, t in sorted(began.items()))
        return Verdict(slo, Outcome.INCONCLUSIVE, float(len(began)), "== 0", "alerts",
                       f"fired in the baseline, before any fault: {named}: a false alarm, or a system not healthy "
                       f"before the fault; either way the run proves nothing about its alerts"
                       + (f"; {note}" if note else ""), details)
    return Verdict(slo, Outcome.PASS, 0.0, "== 0", "alerts", note, details)


def _stretches(times: list[float]) -> list[tuple[float, float]]:
    """Sorted sample times cut into runs without a gap longer than two evaluation steps."""
    out: list[tuple[float, float]] = []
    for t in times:
        if out and t - out[-1][1] <= 2 * STEP_S:
            out[-1] = (out[-1][0], t)
        else:
            out.append((t, t))
    return out


def _expected(url: str, window: RunWindow, name: str, within_s: float) -> Verdict:
    slo, text, unit = f"alert:{name}", f"<= {within_s:g}", "seconds"
    if window.fault_start is None:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, text, unit, "no fault recorded in the journal")
    bound = window.fault_start + within_s
    until = min(window.end, bound)
    try:
        series = prom.range_query(url, f"{_firing(name)} or on() vector(0)", window.fault_start,
                                  max(until, window.fault_start + 1), step_s=STEP_S)
    except prom.ProbeError as exc:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, text, unit, str(exc))
    points = sorted(p for s in series for p in s.points)
    fired = [t for t, v in points if v >= 1]
    if fired and points and fired[0] <= points[0][0]:
        return Verdict(slo, Outcome.INCONCLUSIVE, 0.0, text, unit,
                       f"{name} was already firing when the fault began: this run cannot show the fault fired it")
    if fired:
        after = round(fired[0] - window.fault_start, 1)
        return Verdict(slo, Outcome.PASS, after, text, unit, "", {"first_firing_s": after})
    if window.end < bound:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, text, unit,
                       f"{name} had not fired when the run ended, {window.end - window.fault_start:.0f} s after the "
                       f"fault's start (the bound is {within_s:g} s)")
    return Verdict(slo, Outcome.FAIL, None, text, unit,
                   f"{name} never fired within {within_s:g} s of the fault's start: the alert for this disaster "
                   f"did not see it")
