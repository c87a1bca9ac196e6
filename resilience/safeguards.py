"""Safeguards while a fault is active, and the kill switch, as a Chaos Toolkit control.

Once per second, from the first fault the run injects until its method ends, a monitor thread
checks

- the **burn-rate rules** of every budget SLO the experiment judges (:mod:`probes.burnrate`: the
  availability budget burning ≥ 14.4× over 5 min and 1 min). An SLO the
  experiment does not judge is one it breaks on purpose (a ClickHouse partition takes every replica
  out of service), so it gets no rule;
- the user's ``--abort-if`` conditions (PromQL over the catalogue's measures, :class:`probes.burnrate.AbortIf`);

and, from the start of the experiment, the **kill switch** (:mod:`faults.killswitch`).

A breach interrupts the experiment the way Chaos Toolkit's own safeguards do
(``chaosaddons.controls.safeguards``): :func:`chaoslib.exit.exit_gracefully` sends the process
SIGUSR1, chaoslib's handler raises ``SystemExit(20)`` in the main thread — which wakes it from the
long pause after a fault at once — the journal says ``interrupted`` and **every rollback runs**.
One thing is added: the signal is honoured only while the method runs (:func:`after_method_control`
disarms it in the main thread), so a breach seen just as the method ends can never cut the
rollbacks short. What tripped is written to ``safeguard.json`` in the run directory, and the judge
turns it into the verdict ``safeguard`` (failed: "aborted by safeguard: <rule> = <value>") or
``kill_switch`` (inconclusive), offline as live.

``resilience run`` adds this control to every experiment (:func:`attach`); with a plain
``chaos run``, declare it in the experiment's ``controls``::

    controls:
      - name: sql-audit-safeguards
        provider: {type: python, module: resilience.safeguards, arguments: {abort_if: ["{consumer_lag} > 40000"]}}
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes import prom
from probes.burnrate import DEFAULT_WINDOWS, AbortIf, Breach, BurnRule, burn_rules, expand_abort_if
from probes.slo import Catalogue, MetricView
from probes.verdict import Outcome, Verdict

logger = logging.getLogger(__name__)

__all__ = ["CONTROL_NAME", "STOP_FILE", "after_experiment_control", "after_method_control", "attach",
           "before_experiment_control", "cleanup_control", "configure_control", "judged_slos", "stop_verdicts",
           "validate_abort_if"]

CONTROL_NAME = "sql-audit-safeguards"
STOP_FILE = "safeguard.json"
INTERVAL_S = 1.0


def judged_slos(doc: dict[str, Any], cat: Catalogue) -> list[str]:
    """The SLO ids an experiment document is judged by (its extension's ``slos``, else its scenario's)."""
    from resilience.experiments import EXTENSION

    ext = next((e for e in doc.get("extensions", []) if isinstance(e, dict) and e.get("name") == EXTENSION), {})
    if ext.get("slos") is not None:
        return [str(s) for s in ext["slos"]]
    try:
        return list(cat.scenario(str(ext.get("scenario"))).slos)
    except KeyError:
        return []


def validate_abort_if(cat: Catalogue, view: MetricView, exprs: tuple[str, ...] | list[str],
                      prometheus_url: str | None = None) -> list[AbortIf]:
    """Expand every ``--abort-if`` and, given a Prometheus, ask it once (so a typo fails before any fault).

    Raises:
        ValueError: naming the flag, the expression and what is wrong with it.
    """
    from probes.burnrate import firing

    out = []
    for expr in exprs:
        try:
            cond = expand_abort_if(cat, view, expr)
        except ValueError as exc:
            raise ValueError(f"--abort-if {exc}") from None
        if prometheus_url:
            try:
                value = firing(prometheus_url, cond.query, timeout_s=5.0)
            except prom.ProbeError as exc:
                raise ValueError(f"--abort-if {expr!r}: {exc}") from None
            if value is not None:
                raise ValueError(f"--abort-if {expr!r} already fires before any fault (value {value:g}): the run "
                                 "would be aborted at once")
        out.append(cond)
    return out


def attach(doc: dict[str, Any], run_dir: Path, abort_if: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """A copy of the experiment document with this control added (the journal then shows it too)."""
    entry = {"name": CONTROL_NAME, "provider": {"type": "python", "module": __name__,
                                                 "arguments": {"run_dir": str(run_dir), "abort_if": list(abort_if)}}}
    controls = [c for c in doc.get("controls", []) if c.get("name") != CONTROL_NAME]
    return {**doc, "controls": [*controls, entry]}


# ---------------------------------------------------------------------------------------- the monitor
@dataclass
class _Guard:
    """The state of the experiment being guarded (chaoslib runs one at a time)."""

    prometheus_url: str
    rules: list[BurnRule]
    conditions: list[AbortIf]
    state_dir: Path
    run_id: str
    settings: Any
    run_dir: Path | None
    interval_s: float = INTERVAL_S
    since: float | None = None
    armed: bool = False
    tripped: dict[str, Any] | None = None
    failed_checks: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    previous_handler: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault_started(self) -> bool:
        from faults import journal

        return bool(journal.entries(self.state_dir, self.run_id))

    def loop(self) -> None:
        from faults import killswitch

        while not self.stop.wait(self.interval_s):
            now = time.time()
            try:
                halt = killswitch.status(self.settings)
            except Exception as exc:  # a cluster that does not answer must not stop the monitor
                halt = None
                logger.warning("safeguards: kill switch unreadable: %s", exc)
            if halt is not None:
                self.trip({"kind": "kill_switch", "rule": halt.describe(), "value": None, "breached_at": halt.at,
                           "detected_at": now, "details": halt.as_dict()})
                return
            if not self.fault_started():
                continue
            checks: list[BurnRule | AbortIf] = [*self.rules, *self.conditions]
            for check in checks:
                try:
                    breach: Breach | None = check.check(self.prometheus_url, now, self.since)
                except prom.ProbeError as exc:
                    self.failed_checks += 1
                    if self.failed_checks in (1, 10, 100):
                        logger.warning("safeguards: cannot evaluate %s (%d failed checks): %s",
                                       getattr(check, "slo", getattr(check, "given", "?")), self.failed_checks, exc)
                    continue
                if breach is not None:
                    self.trip({"kind": "safeguard", "rule": breach.rule, "value": breach.value,
                               "breached_at": breach.at, "detected_at": time.time(),
                               "details": {"check": breach.kind, **breach.details}})
                    return

    def trip(self, what: dict[str, Any]) -> None:
        with self.lock:
            if self.tripped is not None:
                return
            what["armed"] = self.armed
            self.tripped = what
            self._write()
        if what["armed"]:
            from chaoslib.exit import exit_gracefully

            logger.critical("%s: %s%s — interrupting the experiment, every rollback runs",
                            "aborted by safeguard" if what["kind"] == "safeguard" else "kill switch",
                            what["rule"], "" if what["value"] is None else f" = {what['value']:g}")
            what["signalled_at"] = time.time()
            self._write()
            exit_gracefully()
        else:
            logger.warning("%s after the method ended (%s): the rollbacks run next anyway", what["kind"], what["rule"])

    def _write(self) -> None:
        if self.run_dir is None or self.tripped is None:
            return
        with contextlib.suppress(OSError):
            (self.run_dir / STOP_FILE).write_text(json.dumps(self.tripped, indent=1, default=str))

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGUSR1 in the main thread: chaoslib's handler (raise SystemExit) only while the method runs."""
        if self.armed and callable(self.previous_handler):
            self.armed = False
            if self.tripped is not None:
                self.tripped["interrupted_at"] = time.time()
                self._write()
            self.previous_handler(signum, frame)
        else:
            logger.info("interrupt signal after the method: ignored, the rollbacks run next")


_guard: _Guard | None = None


def configure_control(configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
                      settings: dict[str, Any] | None = None, experiment: dict[str, Any] | None = None,
                      run_dir: str | None = None, abort_if: list[str] | None = None,
                      slos: list[str] | None = None, interval_s: float = INTERVAL_S) -> None:
    """Build the rules of this experiment: its budget SLOs' burn-rate rules and the ``abort_if`` conditions.

    Args:
        run_dir: where ``safeguard.json`` goes (``resilience run`` passes its run directory).
        abort_if: PromQL conditions over ``{measure}`` placeholders (``"{consumer_lag} > 40000"``).
        slos: the SLO ids to guard (default: those the experiment is judged by).
        interval_s: seconds between two rounds of checks.
    """
    global _guard
    from probes.endpoints import metric_view
    from probes.slo import DEFAULT_SLO_FILE, load_catalogue
    from target.settings import resolve

    _guard = None
    try:
        s = resolve(configuration)
        cat = load_catalogue(s.slo_file or DEFAULT_SLO_FILE)
        view = metric_view(s, cat)
        ids = list(slos) if slos is not None else judged_slos(experiment or {}, cat)
        rules = burn_rules(cat, view, ids, DEFAULT_WINDOWS)
        conditions = [expand_abort_if(cat, view, e) for e in abort_if or []]
    except Exception as exc:  # chaoslib would only log this at DEBUG: say it loudly, the run is unguarded
        logger.error("safeguards NOT active for this experiment: %s: %s", type(exc).__name__, exc)
        raise
    _guard = _Guard(str(s.prometheus_url), rules, conditions, s.fault_state_dir, s.run_id, s,
                    Path(run_dir) if run_dir else None, float(interval_s))
    logger.info("safeguards: %s; %s; kill switch %s",
                "; ".join(r.describe() for r in rules) or "no budget SLO judged, no burn-rate rule",
                "; ".join(f"abort if {c.given}" for c in conditions) or "no --abort-if",
                "ConfigMap" if s.target == "kubernetes" else s.fault_state_dir / "HALT")


def before_experiment_control(context: Any = None, configuration: dict[str, Any] | None = None,
                              secrets: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Arm the interrupt (main thread) and start the monitor."""
    g = _guard
    if g is None:
        return
    try:
        g.previous_handler = signal.getsignal(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, g.on_signal)
    except ValueError:  # not the main thread: no signals, the monitor still records what it sees
        logger.warning("safeguards: not in the main thread, breaches are recorded but cannot interrupt")
    g.armed = True
    g.since = time.time()  # burn rates count from here: an outage left by an earlier run is not this run's
    g.thread = threading.Thread(target=g.loop, name="safeguards", daemon=True)
    g.thread.start()


def after_method_control(context: Any = None, state: Any = None, configuration: dict[str, Any] | None = None,
                         secrets: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Disarm (main thread): from here on the rollbacks come next and nothing may interrupt them."""
    if _guard is not None:
        _guard.armed = False


def after_experiment_control(context: Any = None, state: Any = None, configuration: dict[str, Any] | None = None,
                             secrets: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Stop the monitor."""
    cleanup_control()


def cleanup_control() -> None:
    """Stop the monitor and forget this experiment (idempotent)."""
    global _guard
    g = _guard
    if g is None:
        return
    g.armed = False
    g.stop.set()
    if g.thread is not None and g.thread is not threading.current_thread():
        g.thread.join(timeout=5)
    _guard = None


# ---------------------------------------------------------------------------------------- verdicts
def stop_verdicts(run_dir: Path) -> list[Verdict]:
    """The verdict of a run that a safeguard or the kill switch stopped (``safeguard.json``), else none."""
    path = Path(run_dir) / STOP_FILE
    try:
        stop = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(stop, dict):
        return []
    details = {k: stop.get(k) for k in ("breached_at", "detected_at", "signalled_at", "interrupted_at", "details")}
    if stop.get("kind") == "kill_switch":
        return [Verdict("kill_switch", Outcome.INCONCLUSIVE, None, "not set", "",
                        f"{stop.get('rule')}: the experiment was rolled back before its end", details)]
    value = stop.get("value")
    check = (stop.get("details") or {}).get("check")
    objective = (f"< {(stop.get('details') or {}).get('factor', '?')}× budget" if check == "burn_rate"
                 else "not firing")
    shown = "" if value is None else f" = {value:g}"
    return [Verdict("safeguard", Outcome.FAIL, value, objective, "× budget" if check == "burn_rate" else "value",
                    f"aborted by safeguard: {stop.get('rule')}{shown}", details)]
