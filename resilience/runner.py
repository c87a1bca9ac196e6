"""``resilience run``: one scenario end to end, with a verdict, numbers and a report.

1. Validate everything (experiment, SLO file, load arguments, target) before any fault.
2. Local target: bring the stack up if needed, and check it is healthy.
3. Run the experiment through chaoslib with the rollback strategy ``always``; the
   experiment starts the load itself, so a plain ``chaos run`` behaves the same.
4. Stop the load, make sure no fault of the run is left (cleanup if one is), wait
   for the pipeline to drain, and judge the SLOs (``resilience/judge.py``).
5. Write the run directory (``docs/run-directory.md``) and its report.

Exit codes: 0 every SLO passed · 1 an SLO failed · 2 inconclusive, or an error.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.dataloss import wait_drained
from probes.slo import DEFAULT_SLO_FILE, SloFileError, load_catalogue
from probes.verdict import Outcome
from resilience import experiments as xp
from resilience.grafana import annotate_fault
from resilience.judge import EXIT_CODES, Judgement, judge
from resilience.secrets import Redactor
from stack.core import LocalStack
from stack.endpoints import CONSUMER_GROUP, DEFAULT_PORT_BASE, TOPIC, Endpoints
from stack.errors import StackError
from stack.paths import REPO_ROOT

logger = logging.getLogger(__name__)

DEFAULT_REPORTS = REPO_ROOT / "reports"


class RunError(Exception):
    """The run could not start: bad input or an unreachable endpoint (nothing was injected)."""


@dataclass
class RunOptions:
    """What to run; ``None`` load fields take the experiment's defaults."""

    experiment: str
    target: str = "local"
    shape: str | None = None
    rate: float | None = None
    duration: float | None = None
    seed: int | None = None
    port_base: int = DEFAULT_PORT_BASE
    data_dir: Path | None = None
    reports_dir: Path = DEFAULT_REPORTS
    slo_file: Path = DEFAULT_SLO_FILE
    prometheus_url: str | None = None
    kafka_bootstrap: str | None = None
    clickhouse: tuple[str, int] | None = None
    bring_up: bool = True
    extra_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    run_dir: Path
    outcome: Outcome
    exit_code: int
    summary: dict[str, Any]


Phase = Callable[[str, str], None]
"""``phase(name, detail)``: progress for the terminal."""


def _quiet_phase(name: str, detail: str) -> None:
    logger.info("%s %s", name, detail)


# --------------------------------------------------------------------------- validation
@dataclass
class _Plan:
    exp: xp.Experiment
    load: dict[str, Any]
    endpoints: dict[str, Any]


def plan(options: RunOptions) -> _Plan:
    """Validate every input; :class:`RunError` names the file, field or URL. Changes nothing."""
    try:
        exp = xp.load(xp.resolve(options.experiment))
        cat = load_catalogue(options.slo_file)
    except (xp.ExperimentError, SloFileError) as exc:
        raise RunError(str(exc)) from None
    try:
        cat.scenario(exp.ext.scenario)
        for slo_id in exp.ext.slos or []:
            cat.slo(slo_id)
    except KeyError as exc:
        raise RunError(f"{exp.path}: extensions[{xp.EXTENSION}]: {exc.args[0]} "
                       f"(in {options.slo_file})") from None
    if options.target not in cat.targets:
        raise RunError(f"--target {options.target!r}: {options.slo_file} maps metrics for "
                       f"{', '.join(cat.targets)} only")
    load: dict[str, Any] = {
        "shape": options.shape or exp.config_default("load_shape") or "steady",
        "rate_eps": options.rate if options.rate is not None else float(exp.config_default("load_rate") or 100),
        "duration_s": (options.duration if options.duration is not None
                       else float(exp.config_default("load_duration") or 120)),
        "seed": options.seed if options.seed is not None else int(exp.config_default("load_seed") or 0),
    }
    from loadtests.config import LoadConfigError, LoadSpec

    try:  # the load's own validation: unknown shape, rate or duration <= 0
        LoadSpec(bootstrap="127.0.0.1:1", shape=load["shape"], rate=load["rate_eps"], duration=load["duration_s"],
                 seed=load["seed"])
    except (LoadConfigError, ValueError) as exc:
        raise RunError(f"load: {exc}") from None
    if options.target == "local":
        ep = Endpoints(options.port_base)
        endpoints: dict[str, Any] = {"prometheus_url": options.prometheus_url or ep.prometheus_url,
                                     "kafka_bootstrap": options.kafka_bootstrap or ep.kafka_bootstrap,
                                     "clickhouse": options.clickhouse or (ep.clickhouse_host, ep.clickhouse_port)}
    else:
        from target.settings import SettingsError, resolve

        try:
            target = resolve({"target": "kubernetes"})
        except SettingsError as exc:
            raise RunError(str(exc)) from None
        options.prometheus_url = options.prometheus_url or target.prometheus_url
        options.kafka_bootstrap = options.kafka_bootstrap or target.kafka_bootstrap
        if not options.clickhouse and target.clickhouse_host:
            options.clickhouse = (target.clickhouse_host, target.clickhouse_port or 9000)
        missing = [n for n, v in (("--prometheus-url", options.prometheus_url),
                                  ("--kafka-bootstrap", options.kafka_bootstrap),
                                  ("--clickhouse", options.clickhouse)) if not v]
        if missing:
            raise RunError(f"target kubernetes needs {', '.join(missing)} (or those keys in the file named by "
                           "RESILIENCE_TARGET_CONFIG)")
        endpoints = {"prometheus_url": options.prometheus_url, "kafka_bootstrap": options.kafka_bootstrap,
                     "clickhouse": options.clickhouse}
    return _Plan(exp, load, endpoints)


def _check_reachable(p: _Plan) -> None:
    """Every endpoint the run depends on answers, before any fault (``RunError`` names the URL)."""
    import requests

    url = p.endpoints["prometheus_url"]
    try:
        requests.get(f"{url}/-/ready", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        raise RunError(f"Prometheus at {url} is not reachable: {exc}") from None
    from loadtests.config import LoadConfigError, check_bootstrap

    try:
        check_bootstrap(p.endpoints["kafka_bootstrap"], TOPIC, timeout=5)
    except LoadConfigError as exc:
        raise RunError(str(exc)) from None


def _wait_observed(p: _Plan, options: RunOptions, phase: Phase, timeout_s: float = 60.0) -> None:
    """Wait until Prometheus sees every expected replica ready (a stack just started has not
    been scraped yet); :class:`RunError` if it never does — the hypothesis would fail anyway."""
    from probes import prom

    cat = load_catalogue(options.slo_file)
    t = cat.targets[options.target]
    query = f"sum({t.metrics['replica_ready']}{{{t.selector}}}) or vector(0)"
    want = p.exp.ext.expected_replicas
    deadline = time.monotonic() + timeout_s
    seen = 0.0
    while True:
        try:
            seen = prom.instant(p.endpoints["prometheus_url"], query, timeout_s=3)
            if seen >= want:
                return
        except prom.ProbeError as exc:
            logger.info("waiting for Prometheus to see the replicas: %s", exc)
        if time.monotonic() > deadline:
            raise RunError(f"Prometheus at {p.endpoints['prometheus_url']} sees {seen:.0f} of {want} replicas ready "
                           f"after {timeout_s:.0f} s ({query}); is the service running?")
        phase("stack", f"waiting for Prometheus to see {want} ready replicas ({seen:.0f} so far)")
        time.sleep(1)


# --------------------------------------------------------------------------------- run
def run(options: RunOptions, phase: Phase = _quiet_phase, live: Callable[[dict[str, Any]], None] | None = None
        ) -> RunResult:
    """Run one experiment and judge it. Raises :class:`RunError` before anything is injected."""
    p = plan(options)
    if options.target == "local" and options.bring_up:
        stack = LocalStack(port_base=options.port_base, data_dir=options.data_dir, profile=p.exp.ext.profile)
        try:
            if not stack.is_running():
                phase("stack", f"starting the {p.exp.ext.profile} stack (port base {options.port_base})")
                stack.up(lambda c, ph, d: phase("stack", f"{c}: {ph} {d}".strip()))
            status = stack.status()
        except StackError as exc:
            raise RunError(f"local stack: {exc}") from None
        if not status.healthy:
            bad = "; ".join(f"{c.name}: {c.detail}" for c in status.components if not c.healthy)
            raise RunError(f"local stack at port base {options.port_base} is not healthy: {bad}")
    _check_reachable(p)
    _wait_observed(p, options, phase)

    scenario = p.exp.ext.scenario
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_id = f"{stamp}-{p.exp.name}-{uuid.uuid4().hex[:4]}"
    run_dir = options.reports_dir / f"{stamp}-{p.exp.name}"  # two experiments may share a scenario
    if run_dir.exists():
        run_dir = options.reports_dir / run_id
    run_dir.mkdir(parents=True)
    redactor = Redactor.from_environment(extra=_stack_secrets(options))
    run: dict[str, Any] = {
        "format": 1, "run_id": run_id, "scenario": scenario, "experiment": _rel(p.exp.path),
        "experiment_name": p.exp.name,
        "title": p.exp.title, "target": options.target, "load": p.load,
        "stack": {"port_base": options.port_base, "profile": p.exp.ext.profile},
        "slo_file": _rel(options.slo_file), "extension": p.exp.ext.model_dump(exclude={"name"}),
        "endpoints": {"prometheus_url": p.endpoints["prometheus_url"],
                      "kafka_bootstrap": p.endpoints["kafka_bootstrap"],
                      "clickhouse": list(p.endpoints["clickhouse"])},
        "started_at": time.time(), "ended_at": None, "fault": None, "error": None,
    }
    _write(run_dir / "run.json", run, redactor)
    env = {
        "RESILIENCE_TARGET": options.target, "RESILIENCE_PORT_BASE": str(options.port_base),
        "RESILIENCE_RUN_ID": run_id, "RESILIENCE_LOAD_DIR": str(run_dir / "load"),
        "RESILIENCE_LEDGER_DIR": str(run_dir / "ledger"), "RESILIENCE_LOAD_SHAPE": str(p.load["shape"]),
        "RESILIENCE_LOAD_RATE": str(p.load["rate_eps"]), "RESILIENCE_LOAD_DURATION": str(p.load["duration_s"]),
        "RESILIENCE_LOAD_SEED": str(p.load["seed"]),
        **({"RESILIENCE_DATA_DIR": str(options.data_dir)} if options.data_dir else {}),
    }
    # Chaos Toolkit drops configuration keys an experiment does not declare, so everything the
    # activities need also travels in the environment (the experiments declare the load keys).
    config = {"target": options.target, "stack_port_base": options.port_base, "run_id": run_id,
              "load_dir": str(run_dir / "load"), "ledger_dir": str(run_dir / "ledger"),
              "load_shape": p.load["shape"], "load_rate": p.load["rate_eps"],
              "load_duration": p.load["duration_s"], "load_seed": p.load["seed"],
              "prometheus_url": p.endpoints["prometheus_url"], "kafka_bootstrap": p.endpoints["kafka_bootstrap"],
              "clickhouse_host": p.endpoints["clickhouse"][0], "clickhouse_port": p.endpoints["clickhouse"][1],
              **options.extra_config}
    journal: dict[str, Any] | None = None
    drained: dict[str, Any] = {"drained": False, "reason": "not awaited"}
    with _log_to(run_dir / "runner.log", redactor), _environ(env), _poller(p, live):
        try:
            journal = _run_experiment(p.exp, config, phase)
        except BaseException as exc:  # Ctrl-C included: judge what we have, then re-raise
            run["error"] = f"experiment interrupted: {type(exc).__name__}: {exc}"
            if not isinstance(exc, Exception):
                _finish(run_dir, run, p, redactor, phase, journal, drained)
                raise
        finally:
            _stop_load(run_dir)
            leftover = _cleanup_faults(run_id)
            if leftover:
                run["error"] = (run.get("error") or "") + f" faults left by the experiment and cleaned up: {leftover}"
            run["ended_at"] = time.time()
            run["fault"] = _fault_window(run_id)
        phase("draining", f"waiting for consumer lag 0 (up to {p.exp.ext.drain_timeout_s:.0f} s)")
        d = wait_drained(p.endpoints["kafka_bootstrap"], CONSUMER_GROUP, TOPIC, timeout_s=p.exp.ext.drain_timeout_s)
        drained = {"drained": d.drained, "waited_s": round(d.waited_s, 1), "reason": d.reason,
                   "lag": d.last.total if d.last else None}
        return _finish(run_dir, run, p, redactor, phase, journal, drained)


def _finish(run_dir: Path, run: dict[str, Any], p: _Plan, redactor: Redactor, phase: Phase,
            journal: dict[str, Any] | None, drained: dict[str, Any]) -> RunResult:
    if run.get("ended_at") is None:
        run["ended_at"] = time.time()
    if journal is not None:
        _write(run_dir / "journal.json", journal, redactor)
        problems = [f"{r['activity'].get('name')} failed: {_last_line(r.get('exception'))}"
                    for r in journal.get("run", []) if r.get("status") == "failed"]
        if journal.get("status") != "completed":
            problems.insert(0, f"experiment {journal.get('status')} (deviated: {journal.get('deviated')})")
        if problems and not run.get("error"):
            run["error"] = "; ".join(problems)
    _write(run_dir / "run.json", run, redactor)
    phase("judging", "evaluating the SLOs")
    j: Judgement = judge(run_dir, run, p.endpoints["prometheus_url"], live=True,
                         clickhouse=tuple(p.endpoints["clickhouse"]), drained=drained,
                         postgres=_postgres_for_checks(run))
    summary = j.summary(run["scenario"])
    _write(run_dir / "summary.json", summary, redactor)
    annotate_fault(run, j.outcome.value)
    record_series(run_dir, run, p.endpoints["prometheus_url"], redactor)
    phase("report", "rendering")
    render(run_dir)
    return RunResult(run_dir, j.outcome, EXIT_CODES[j.outcome], summary)


def _postgres_for_checks(run: dict[str, Any]) -> dict[str, Any] | None:
    """psycopg keywords (and the replicas' checker file) of the local stack; None elsewhere."""
    if run.get("target") != "local":
        return None
    from stack.components.audit_service import checkers_file

    data_dir = os.environ.get("RESILIENCE_DATA_DIR")
    stack = LocalStack(port_base=int(run["stack"]["port_base"]), data_dir=Path(data_dir) if data_dir else None)
    return {**stack.ctx.postgres_kwargs(), "checkers_file": str(checkers_file(stack.ctx))}


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


def _run_experiment(exp: xp.Experiment, config: dict[str, Any], phase: Phase) -> dict[str, Any]:
    from chaoslib.run import RunEventHandler, Runner
    from chaoslib.types import Strategy

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

    settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    runner = Runner(Strategy.DEFAULT)
    runner.register_event_handler(Progress())
    return runner.run(exp.doc, settings, experiment_vars=(config, {}))


def _stop_load(run_dir: Path) -> None:
    from loadtests import runner as load_runner

    if (run_dir / "load" / load_runner.HANDLE_FILE).exists():
        try:
            load_runner.stop_load(str(run_dir / "load"), timeout=20)
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


def _fault_window(run_id: str) -> dict[str, Any] | None:
    """The run's first fault from the fault journal (:func:`faults.journal.fault_window`)."""
    from faults import journal
    from target.settings import resolve

    window = journal.fault_window(resolve().fault_state_dir, run_id)
    return window.as_dict() if window else None


# --------------------------------------------------------------------------- recording
SERIES: dict[str, tuple[str, str]] = {
    # name: (PromQL over the local metric names, unit)
    "consumer_lag": ('sum({consumer_lag_sum}{{consumergroup="sql-audit-service"}})', "events"),
    "latency_p95_s": ('histogram_quantile(0.95, sum by (le) (rate({processing_latency_bucket}{{{selector}}}[10s])))',
                      "seconds"),
    "e2e_p95_s": ('histogram_quantile(0.95, sum by (le) (rate({e2e_latency_bucket}{{{selector}}}[10s])))', "seconds"),
    "throughput_eps": ("sum(rate({events_processed}{{{selector}}}[10s]))", "events/s"),
    "error_ratio": ("sum(rate({events_failed}{{{selector}}}[30s])) / "
                    "clamp_min(sum(rate({events_consumed}{{{selector}}}[30s])), 1e-9)", "ratio"),
    "ready_replicas": ("sum({replica_ready}{{{selector}}}) or vector(0)", "replicas"),
}


def record_series(run_dir: Path, run: dict[str, Any], prometheus_url: str, redactor: Redactor | None = None) -> None:
    """Fetch the plot series of the run from Prometheus into ``series.json`` (missing ones are left out)."""
    from probes import prom

    cat = load_catalogue(Path(run.get("slo_file") or DEFAULT_SLO_FILE)) if run.get("slo_file") else load_catalogue()
    target = cat.targets[run.get("target", "local")]
    start, end = float(run["started_at"]), float(run["ended_at"])
    out: dict[str, Any] = {"step_s": 1, "series": {}, "missing": {}, "thresholds": {
        "consumer_lag": [{"label": "warning", "value": cat.slo("consumer_lag_warning").objective.value},
                         {"label": "critical", "value": cat.slo("consumer_lag_critical").objective.value}],
        "latency_p95_s": [{"label": "SLO p95", "value": cat.slo("latency_p95").objective.value}],
        "e2e_p95_s": [{"label": "SLO p95", "value": cat.slo("latency_p95_end_to_end").objective.value}],
        "error_ratio": [{"label": "SLO", "value": cat.slo("error_rate").objective.value}],
        "ready_replicas": [{"label": "PDB min", "value": cat.slo("pdb_min_available").objective.value}],
    }}
    for name, (template, unit) in SERIES.items():
        query = template.format(selector=target.selector, **target.metrics)
        try:
            series = prom.range_query(prometheus_url, query, start, max(end, start + 1))
            out["series"][name] = {"unit": unit, "points": [[t, v] for t, v in series[0].points]}
        except prom.ProbeError as exc:
            out["missing"][name] = str(exc)
    _write(run_dir / "series.json", out, redactor)


# ------------------------------------------------------------------------------ helpers
def _write(path: Path, data: Any, redactor: Redactor | None) -> None:
    from resilience.judge import _json_safe

    text = json.dumps(_json_safe(data), indent=1, default=str)
    path.write_text(redactor.redact(text) if redactor else text)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _stack_secrets(options: RunOptions) -> list[str]:
    if options.target != "local":
        return []
    try:
        stack = LocalStack(port_base=options.port_base, data_dir=options.data_dir)
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


@contextmanager
def _log_to(path: Path, redactor: Redactor) -> Iterator[None]:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor.log_filter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    for noisy in ("kafka", "clickhouse_driver", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


@contextmanager
def _poller(p: _Plan, live: Callable[[dict[str, Any]], None] | None, every_s: float = 2.0) -> Iterator[None]:
    """Feed ``live`` with current lag, p95 and ready replicas while the experiment runs."""
    if live is None:
        yield
        return
    from probes import prom

    stop = threading.Event()
    url = p.endpoints["prometheus_url"]
    queries = {"lag": 'sum(kafka_consumergroup_lag_sum{consumergroup="sql-audit-service"})',
               "p95": 'histogram_quantile(0.95, sum by (le) (rate(sqlaudit_end_to_end_latency_seconds_bucket[10s])))',
               "ready": "sum(sqlaudit_ready) or vector(0)"}

    def loop() -> None:
        while not stop.wait(every_s):
            values: dict[str, Any] = {}
            for key, q in queries.items():
                try:
                    values[key] = prom.instant(url, q, timeout_s=2)
                except prom.ProbeError:
                    values[key] = None
            live(values)

    thread = threading.Thread(target=loop, name="live-metrics", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)

