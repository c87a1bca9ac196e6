"""``resilience run``: one scenario end to end, with a verdict, numbers and a report.

1. Plan: validate everything (experiment, SLO file, load arguments, target settings) before any
   fault (:mod:`resilience.plan`).
2. Local target: bring the stack up if needed, and check it is healthy; every target: its
   endpoints answer and Prometheus sees the replicas.
3. Run the experiment through chaoslib with the rollback strategy ``always``; the experiment
   starts the load itself, so a plain ``chaos run`` behaves the same.
4. Stop the load, make sure no fault of the run is left (cleanup if one is), check the target is
   back where it started (:mod:`resilience.residue`: a snapshot before the experiment, one now),
   read the fault window from the journal, wait for the pipeline to drain, and judge the SLOs
   (:mod:`resilience.judge`).
5. Write the run directory (:mod:`resilience.rundir`, ``docs/run-directory.md``), its plot series
   (:mod:`resilience.series`) and its report.

Exit codes: 0 every SLO passed · 1 an SLO failed · 2 inconclusive, or an error.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from loadtests.config import LoadConfigError
from loadtests.service_load import warm_up
from probes import prom
from probes.dataloss import wait_drained
from probes.verdict import Outcome
from resilience import alerting, residue
from resilience.grafana import annotate_fault
from resilience.judge import EXIT_CODES, Judgement, judge
from resilience.plan import (
    Phase,
    RunError,
    RunOptions,
    RunPlan,
    check_metrics,
    check_reachable,
    plan,
    wait_alerts_resolved,
    wait_assigned,
    wait_observed,
)
from resilience.rundir import RunDirectory
from resilience.secrets import Redactor
from resilience.series import live_poller, record_series
from stack.core import LocalStack
from stack.errors import StackError
from stack.paths import REPO_ROOT

logger = logging.getLogger(__name__)

__all__ = ["RunError", "RunOptions", "RunResult", "render", "run"]


@dataclass
class RunResult:
    run_dir: Path
    outcome: Outcome
    exit_code: int
    summary: dict[str, Any]


class RunInterrupted(KeyboardInterrupt):
    """The user's Ctrl-C or SIGTERM ended the run; raised once its faults were rolled back and it was judged
    (inconclusive): ``result`` is that verdict. A gate stops at it; the CLI prints it and exits 2."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


def _quiet_phase(name: str, detail: str) -> None:
    logger.info("%s %s", name, detail)


def run(options: RunOptions, phase: Phase = _quiet_phase, live: Callable[[dict[str, Any]], None] | None = None
        ) -> RunResult:
    """Run one experiment and judge it. Raises :class:`RunError` before anything is injected."""
    p = plan(options)
    if options.target == "local" and options.bring_up:
        _bring_up(p, phase)
        p = plan(options)  # a stack just made with --secure has credentials the settings read from it now
    check_reachable(p)
    wait_observed(p, phase)
    wait_assigned(p, phase)
    if options.target == "local":
        _warm_up(p, phase)
    wait_alerts_resolved(p, phase)
    check_metrics(p)

    rd = RunDirectory.create(options.reports_dir, p.exp.name,
                             Redactor.from_environment(extra=[*_stack_secrets(p), *p.settings.secret_values()]))
    run: dict[str, Any] = {
        "format": 1, "run_id": rd.run_id, "scenario": p.exp.ext.scenario, "experiment": _rel(p.exp.path),
        "experiment_name": p.exp.name, "title": p.exp.title, "target": options.target, "load": p.load,
        "stack": {"port_base": options.port_base, "profile": p.exp.ext.profile},
        "service": p.settings.service,
        "slo_file": _rel(options.slo_file), "extension": p.exp.ext.model_dump(exclude={"name"}),
        "endpoints": {"prometheus_url": p.prometheus_url, "kafka_bootstrap": p.kafka_bootstrap,
                      "clickhouse": list(p.clickhouse)},
        "metrics": p.view.as_dict(), "contract": p.settings.contract.model_dump(),
        "started_at": time.time(), "ended_at": None, "fault": None, "error": None,
        "alerts": _alerts_entry(p), "alerts_not_expected": p.dropped_alerts,
    }
    for line in p.dropped_alerts:
        phase("alerts", line)
    rd.write("run.json", run)
    config = _configuration(p, rd, run["started_at"])
    # Chaos Toolkit drops configuration keys an experiment does not declare, so what the activities
    # need also travels in the environment, where the settings model (and the experiments' declared
    # load keys) read it.
    env = {"RESILIENCE_TARGET": options.target, "RESILIENCE_PORT_BASE": str(options.port_base),
           "RESILIENCE_SERVICE": p.settings.service,
           "RESILIENCE_RUN_ID": rd.run_id, "RESILIENCE_RUN_STARTED_AT": repr(run["started_at"]),
           "RESILIENCE_LOAD_DIR": str(rd.load_dir),
           "RESILIENCE_LEDGER_DIR": str(rd.ledger_dir), "RESILIENCE_LOAD_SHAPE": str(p.load["shape"]),
           "RESILIENCE_LOAD_RATE": str(p.load["rate_eps"]), "RESILIENCE_LOAD_DURATION": str(p.load["duration_s"]),
           "RESILIENCE_LOAD_SEED": str(p.load["seed"]),
           **({"RESILIENCE_DATA_DIR": str(options.data_dir)} if options.data_dir else {})}
    journal: dict[str, Any] | None = None
    drained: dict[str, Any] = {"drained": False, "reason": "not awaited"}
    with rd.log(), _environ(env), live_poller(p.catalogue, p.view, p.prometheus_url, live):
        guard = residue.begin(p, rd)  # the target's snapshot; the run's load under its watchdog
        run["residue"] = residue.FILE
        interrupted: BaseException | None = None
        try:
            journal = _run_experiment(p, config, phase, rd.path)
            _observe_expected_alerts(p, rd.run_id, phase)
        except BaseException as exc:  # Ctrl-C included: judge what we have (after the clean-up), then re-raise
            run["error"] = f"experiment interrupted: {type(exc).__name__}: {exc}"
            if not isinstance(exc, Exception):
                interrupted = exc
        finally:
            _stop_load(rd)
            leftover = _cleanup_faults(rd.run_id)
            if leftover:
                run["error"] = (run.get("error") or "") + f" faults left by the experiment and cleaned up: {leftover}"
            run["ended_at"] = time.time()
            run["fault"] = _fault_window(p, rd.run_id)
            _audit_residue(guard)
        if interrupted is not None:
            result = _finish(rd, run, p, phase, journal, drained)
            if isinstance(interrupted, KeyboardInterrupt):
                raise RunInterrupted(str(interrupted) or "interrupted", result) from interrupted
            raise interrupted
        phase("draining", f"waiting for consumer lag 0 (up to {p.exp.ext.drain_timeout_s:.0f} s)")
        d = wait_drained(p.kafka_bootstrap, p.settings.consumer_group, p.settings.topic,
                         timeout_s=p.exp.ext.drain_timeout_s, auth=p.settings.kafka_auth())
        drained = {"drained": d.drained, "waited_s": round(d.waited_s, 1), "reason": d.reason,
                   "lag": d.last.total if d.last else None}
        return _finish(rd, run, p, phase, journal, drained)


def _bring_up(p: RunPlan, phase: Phase) -> None:
    options = p.options
    service = p.settings.service
    try:
        stack = LocalStack(port_base=options.port_base, data_dir=options.data_dir, profile=p.exp.ext.profile,
                           secure=options.secure, service=service)
        if options.secure and stack.is_running() and not stack.ctx.secure:
            raise StackError(f"--secure: the stack at port base {options.port_base} is running without it; "
                             "`resilience down --purge` it first")
        if not stack.is_running():
            what = "secure " if options.secure else ""
            phase("stack", f"starting the {what}{p.exp.ext.profile} stack with the {service} service "
                           f"(port base {options.port_base})")
            stack.up(lambda c, ph, d: phase("stack", f"{c}: {ph} {d}".strip()))
        elif stack.ctx.service != service:
            raise RunError(f"the stack at port base {options.port_base} runs the {stack.ctx.service} service, not "
                           f"{service}: run `resilience down` first, or pass --service {stack.ctx.service}")
        status = stack.status()
    except StackError as exc:
        raise RunError(f"local stack: {exc}") from None
    if not status.healthy:
        bad = "; ".join(f"{c.name}: {c.detail}" for c in status.components if not c.healthy)
        raise RunError(f"local stack at port base {options.port_base} is not healthy: {bad}")


WARM_FILE = "warm-up.json"
BROKER_WARM_UP_S = 60.0
"""Load the ``ha`` profile's Kafka brokers need after they start: a record there is readable only once both
followers have it, and the first run after ``up`` measured its end-to-end baseline at p95 0.48 s (76 % of the
samples in SLO) where the runs after it measured 0.16-0.19 s (docs/benchmarks.md). The single broker of the
minimal profile serves in SLO from the start."""


def _cold(p: RunPlan, stack: LocalStack) -> dict[str, tuple[float, str]]:
    """The stack's programs that serve slower until they have carried load: each with the seconds of load it needs
    and why (the service's JVM replicas; the ``ha`` profile's brokers)."""
    needs: dict[str, tuple[float, str]] = {}
    for c in stack.components():
        if c.group == "audit-service" and p.settings.warm_up_s:
            needs[c.name] = (p.settings.warm_up_s, f"the {p.settings.service} service's JIT")
        elif stack.ctx.profile == "ha" and (c.name == "kafka" or c.name.startswith("kafka-")):
            needs[c.name] = (BROKER_WARM_UP_S, "the ha brokers' replication")
    return needs


def _warm_up(p: RunPlan, phase: Phase) -> None:
    """Load the programs that have not served load since they started (:func:`_cold`) for the longest warm-up
    they need, and wait until the pipeline has drained, before the run's baseline begins. Remembered per
    process (in the stack's data directory), so a gate pays it again only for the programs a fault restarted."""
    stack = LocalStack(port_base=p.options.port_base, data_dir=p.options.data_dir)
    needs = _cold(p, stack)
    if not needs:
        return
    info = stack.supervisor.process_info()
    pids = {n: int(info[n]["pid"]) for n in sorted(needs) if n in info and info[n].get("pid")}
    marker = stack.data_dir / WARM_FILE
    try:
        warm = json.loads(marker.read_text()).get("pids", {})
    except (OSError, ValueError):
        warm = {}
    cold = [n for n in sorted(needs) if pids.get(n) != warm.get(n)]
    if not cold:
        return
    seconds, rate = max(needs[n][0] for n in cold), float(p.load["rate_eps"])
    why = sorted({needs[n][1] for n in cold})
    phase("warm-up", f"{seconds:.0f} s of load at {rate:g} events/s: {', '.join(cold)} not warmed since "
                     f"{'it' if len(cold) == 1 else 'they'} started ({'; '.join(why)})")
    try:
        with tempfile.TemporaryDirectory(prefix="warm-up-") as tmp:
            done = warm_up(p.settings, rate, seconds, Path(tmp))
    except (ActivityFailed, LoadConfigError, RuntimeError, TimeoutError) as exc:
        raise RunError(f"warm-up load ({', '.join(cold)}) failed: {exc}") from None
    d = wait_drained(p.kafka_bootstrap, p.settings.consumer_group, p.settings.topic, timeout_s=120,
                     auth=p.settings.kafka_auth())
    if not d.drained:
        raise RunError(f"the warm-up load ({done['requests']} requests) did not drain within 120 s: {d.reason}")
    marker.write_text(json.dumps({"pids": pids, "at": time.time(), "load": done}, indent=2))


def _alerts_entry(p: RunPlan) -> dict[str, Any] | None:
    """What the judge needs to read the run's alerts (``resilience/alerting.py``), or ``None``."""
    from probes.alerts import load_alerts
    from resilience.alerting import run_entry

    return run_entry(p.options.target, [e.model_dump() for e in p.exp.ext.expect_alerts],
                     load_alerts(catalogue=p.catalogue).watchdog.alert)


def _configuration(p: RunPlan, rd: RunDirectory, started_at: float) -> dict[str, Any]:
    """The Chaos Toolkit configuration of the run: the target's resolved settings plus the run's own keys
    (``run_started_at``: the run's ``started_at``, so a recovery probe reads the judge's baseline)."""
    s = p.settings
    config: dict[str, Any] = {
        "target": s.target, "stack_port_base": s.stack_port_base, "run_id": rd.run_id,
        "run_started_at": started_at,
        "load_dir": str(rd.load_dir), "ledger_dir": str(rd.ledger_dir),
        "load_shape": p.load["shape"], "load_rate": p.load["rate_eps"], "load_duration": p.load["duration_s"],
        "load_seed": p.load["seed"], "prometheus_url": p.prometheus_url, "kafka_bootstrap": p.kafka_bootstrap,
        "clickhouse_host": p.clickhouse[0], "clickhouse_port": p.clickhouse[1],
        **({"stack_data_dir": str(s.stack_data_dir)} if s.stack_data_dir else {}),
        **({"metric_profiles": list(p.view.profiles), "metric_selector": p.view.selector}),
        "service": s.service,
    }
    return {**config, **p.options.extra_config}


def _finish(rd: RunDirectory, run: dict[str, Any], p: RunPlan, phase: Phase, journal: dict[str, Any] | None,
            drained: dict[str, Any]) -> RunResult:
    if run.get("ended_at") is None:
        run["ended_at"] = time.time()
    if journal is not None:
        rd.write("journal.json", journal)
        run["rollback_started_at"] = _first_rollback_start(journal)
        problems = [f"{r['activity'].get('name')} failed: {_last_line(r.get('exception'))}"
                    for r in journal.get("run", []) if r.get("status") == "failed"]
        if journal.get("status") != "completed":
            problems.insert(0, f"experiment {journal.get('status')} (deviated: {journal.get('deviated')})")
        if problems and not run.get("error"):
            run["error"] = "; ".join(problems)
    rd.write("run.json", run)
    phase("judging", "evaluating the SLOs")
    j: Judgement = judge(rd.path, run, p.prometheus_url, live=True, clickhouse=p.clickhouse, drained=drained,
                         clickhouse_auth=p.settings.clickhouse_auth(), kafka_auth=p.settings.kafka_auth(),
                         postgres=_postgres_for_checks(p), catalogue=p.catalogue, redactor=rd.redactor)
    summary = j.summary(run["scenario"])
    rd.write("summary.json", summary)
    from resilience.history.store import record_run_safely

    summary["history"] = record_run_safely(rd.path)  # bounded; a note, never an error
    rd.write("summary.json", summary)
    annotate_fault(run, j.outcome.value)
    fault_start = (run.get("fault") or {}).get("start")
    rd.write("series.json", record_series(p.catalogue, p.view, p.prometheus_url, float(run["started_at"]),
                                          float(run["ended_at"]),
                                          anchor=float(fault_start) if fault_start else None))
    phase("report", "rendering")
    render(rd.path)
    return RunResult(rd.path, j.outcome, EXIT_CODES[j.outcome], summary)


def _postgres_for_checks(p: RunPlan) -> dict[str, Any] | None:
    """psycopg keywords (and the replicas' checker file) of the local stack; elsewhere the ``postgres_dsn``
    and ``postgres_password`` keys (None without a DSN)."""
    if p.options.target != "local":
        return p.settings.postgres_kwargs()
    from stack.components.audit_service import checkers_file

    stack = LocalStack(port_base=p.options.port_base, data_dir=p.options.data_dir)
    return {**stack.ctx.postgres_kwargs(), "checkers_file": str(checkers_file(stack.ctx))}


def _first_rollback_start(journal: dict[str, Any]) -> float | None:
    """When the experiment's first rollback action started (epoch seconds), from the Chaos Toolkit journal.

    RTOs are observed up to this moment: what comes back after it may be the rollback's doing.
    """
    starts = [str(r["start"]) for r in journal.get("rollbacks") or [] if isinstance(r, dict) and r.get("start")]
    if not starts:
        return None
    first = datetime.fromisoformat(min(starts))
    return (first if first.tzinfo else first.replace(tzinfo=UTC)).timestamp()


def _last_line(exception: Any) -> str:
    """The message of a Chaos Toolkit journal exception (a list of traceback lines)."""
    lines = [str(x).strip() for x in (exception or []) if str(x).strip()]
    return lines[-1][:300] if lines else "unknown error"


def render(run_dir: Path) -> Path | None:
    """Render ``report.html`` (failures to render are logged, never fatal to the verdict)."""
    try:
        from resilience.report import render_report
    except ImportError as exc:
        logger.warning("report renderer unavailable: %s", exc)
        return None
    try:
        return render_report(run_dir)
    except Exception as exc:
        logger.exception("rendering %s failed: %s", run_dir, exc)
        return None


def _run_experiment(p: RunPlan, config: dict[str, Any], phase: Phase, run_dir: Path) -> dict[str, Any]:
    from chaoslib.run import RunEventHandler, Runner
    from chaoslib.types import Strategy

    from resilience.safeguards import attach

    class Progress(RunEventHandler):
        def start_hypothesis_before(self, experiment: Any) -> None:
            phase("hypothesis", "steady state before the fault")

        def start_method(self, experiment: Any) -> None:
            phase("method", "load and fault")

        def start_activity(self, activity: Any) -> None:
            phase("activity", str(activity.get("name")))

        def start_hypothesis_after(self, experiment: Any) -> None:
            phase("hypothesis", "steady state after the fault")

        def start_rollbacks(self, experiment: Any) -> None:
            phase("rollbacks", "undoing every fault")

        def interrupted(self, experiment: Any, journal: Any) -> None:
            signals.append("SIGTERM")  # chaoslib raises InterruptExecution for SIGTERM only (chaoslib.exit)

    # Chaos Toolkit turns Ctrl-C and SIGTERM into a journal "interrupted", plays the rollbacks and returns, as it
    # does for a safeguard's abort (SIGUSR1). A safeguard ends this run only; a signal of the user (Ctrl-C, a CI
    # job's timeout) must end the gate around it too: once the rollbacks ran, it is raised again here (a gate
    # went on to its next experiment after Ctrl-C and after SIGTERM, 2026-12-02).
    signals: list[str] = []

    def on_sigint(signum: int, frame: Any) -> None:
        signals.append("SIGINT")
        raise KeyboardInterrupt

    settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    runner = Runner(Strategy.DEFAULT)
    runner.register_event_handler(Progress())
    doc = attach(p.exp.doc, run_dir, p.options.abort_if)  # burn-rate safeguards, --abort-if, kill switch
    main = threading.current_thread() is threading.main_thread()  # signal handlers live in the main thread
    previous = signal.signal(signal.SIGINT, on_sigint) if main else None
    try:
        journal: dict[str, Any] = runner.run(doc, settings, experiment_vars=(config, {}))
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    if signals:
        raise KeyboardInterrupt(f"{signals[0]} during the experiment (its rollbacks ran)")
    return journal


def _stop_load(rd: RunDirectory) -> None:
    from loadtests import locust_process

    if (rd.load_dir / locust_process.HANDLE_FILE).exists():
        try:
            locust_process.stop_load(str(rd.load_dir), timeout=20)
        except Exception as exc:
            logger.warning("stopping the load: %s", exc)


def _cleanup_faults(run_id: str) -> list[str]:
    """Revert any fault of this run still open; returns what had to be reverted."""
    from faults.cleanup import cleanup

    try:
        reverted = cleanup(run_id=run_id)
    except Exception as exc:
        logger.error("cleanup of run %s failed: %s", run_id, exc)
        return [f"cleanup failed: {exc}"]
    return [str(r) for r in reverted]


def _audit_residue(guard: residue.Guard) -> None:
    """Is the target back where it started? (``residue.json``; judged as the ``residue`` verdict)."""
    try:
        residue.end(guard)
    except Exception as exc:  # the verdict says the audit did not complete
        logger.error("residue audit failed: %s", exc)


def _observe_expected_alerts(p: RunPlan, run_id: str, phase: Phase) -> None:
    """Keep the run (and its load) going until every expected alert has fired or its bound has passed: a
    method that ends sooner would turn an alert that never fires into "the run ended before the bound"
    (inconclusive) instead of the fail it is."""
    expected = [e.model_dump() for e in p.exp.ext.expect_alerts]
    window = _fault_window(p, run_id)
    if not expected or window is None:
        return
    while True:
        now = time.time()
        try:
            waiting = alerting.unfired(p.prometheus_url, float(window["start"]), expected, now)
        except prom.ProbeError as exc:  # the alert verdicts say so
            logger.info("expected alerts not observed to their bound: %s", exc)
            return
        if not waiting:
            return
        bound = max(b for _, b in waiting)
        phase("observing", f"{', '.join(n for n, _ in waiting)} not fired yet: observing until its bound "
                           f"({bound - now:.0f} s more)")
        time.sleep(min(2.0, max(0.1, bound - now)))


def _fault_window(p: RunPlan, run_id: str) -> dict[str, Any] | None:
    """The run's first fault from the fault journal (:func:`faults.journal.fault_window`)."""
    from faults import journal

    window = journal.fault_window(p.settings.fault_state_dir, run_id)
    return window.as_dict() if window else None


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _stack_secrets(p: RunPlan) -> list[str]:
    """The local stack's generated secrets (masked in every file of the run)."""
    if p.options.target != "local":
        return []
    try:
        stack = LocalStack(port_base=p.options.port_base, data_dir=p.options.data_dir)
        data = json.loads((stack.data_dir / "secrets.json").read_text())
        return [str(v) for v in data.values()]
    except (OSError, ValueError, StackError):
        return []


@contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
