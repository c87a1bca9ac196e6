"""Planning a run: every input checked, and every endpoint resolved, before anything is injected.

:func:`plan` reads the experiment, the SLO catalogue, the load arguments and the target's
settings (:mod:`target.settings`); any problem is a :class:`RunError` naming the file, field,
key or URL. :func:`check_reachable`, :func:`wait_observed` and :func:`wait_assigned` then make sure the target
answers, its Prometheus sees the service and its consumer group holds the topic, still before any fault.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes import prom
from probes.endpoints import metric_view
from probes.slo import DEFAULT_SLO_FILE, Catalogue, MeasureUndefined, MetricView, SloFileError, load_catalogue
from resilience import experiments as xp
from stack.endpoints import DEFAULT_PORT_BASE
from stack.paths import REPO_ROOT
from target.settings import SettingsError, TargetSettings, resolve

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_REPORTS", "RunError", "RunOptions", "RunPlan", "check_logins", "check_metrics", "check_reachable",
           "plan", "wait_alerts_resolved", "wait_assigned", "wait_observed"]

DEFAULT_REPORTS = REPO_ROOT / "reports"

Phase = Callable[[str, str], None]
"""``phase(name, detail)``: progress for the terminal."""


class RunError(Exception):
    """The run could not start: bad input or an unreachable endpoint (nothing was injected)."""


class NotApplicable(RunError):
    """The experiment needs what the service under test does not have (a read API, a measure of its effect):
    refused by ``run``, skipped and listed by ``gate`` (a gate of such a service is not made inconclusive by it)."""


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
    metric_profiles: tuple[str, ...] = ()
    metric_selector: str | None = None
    service: str | None = None
    """``python`` or ``spring``; ``None``: on the local target, the service the stack was made with (else python)."""
    bring_up: bool = True
    extra_config: dict[str, Any] = field(default_factory=dict)
    abort_if: tuple[str, ...] = ()
    secure: bool = False
    """local target: the stack is (or is started) with ``--secure`` (:mod:`stack.security`)."""


@dataclass(frozen=True)
class RunPlan:
    """A validated run: the experiment, its load, the target's settings and how its metrics are read."""

    options: RunOptions
    exp: xp.Experiment
    catalogue: Catalogue
    load: dict[str, Any]
    settings: TargetSettings
    view: MetricView
    dropped_alerts: list[str] = field(default_factory=list)
    """Expected alerts (``if_measured``) this view cannot evaluate, a line each: said in the run's summary."""

    @property
    def prometheus_url(self) -> str:
        return str(self.settings.prometheus_url)

    @property
    def kafka_bootstrap(self) -> str:
        return str(self.settings.kafka_bootstrap)

    @property
    def clickhouse(self) -> tuple[str, int]:
        return str(self.settings.clickhouse_host), int(self.settings.clickhouse_port or 9000)


def plan(options: RunOptions) -> RunPlan:
    """Validate every input; :class:`RunError` names the file, field, key or URL. Changes nothing."""
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
        raise RunError(f"{exp.path}: extensions[{xp.EXTENSION}]: {exc.args[0]} (in {options.slo_file})") from None
    known = [*cat.measures, *cat.optional_measures]
    unknown = [e.measure for e in exp.ext.expect_effect if e.measure not in known]
    if unknown:
        raise RunError(f"{exp.path}: extensions[{xp.EXTENSION}].expect_effect: unknown measures {unknown}; "
                       f"measures of {options.slo_file}: {', '.join(known)}")
    if options.target not in cat.targets:
        raise RunError(f"--target {options.target!r}: {options.slo_file} has metric views for "
                       f"{', '.join(cat.targets)} only")
    load = _load(exp, options)
    settings = _settings(options, exp.ext.profile)
    try:
        prom.use_auth(str(settings.prometheus_url), settings.prometheus_auth())
        view = metric_view(settings, cat)
    except Exception as exc:  # ActivityFailed naming the key
        raise RunError(str(exc)) from None
    _refuse_without_read_api(exp, cat, settings)
    undefined = [e.measure for e in exp.ext.expect_effect if cat.measure_template(e.measure, view) is None]
    if undefined:  # an optional measure (the JVM's, an API's) this service does not export
        raise NotApplicable(f"{exp.path}: extensions[{xp.EXTENSION}].expect_effect: the {settings.service} "
                            f"service's metrics (profiles {list(view.profiles)}) do not define {undefined}: its "
                            "effect cannot be measured")
    exp, dropped = expected_alerts_for_view(exp, cat, view)
    _refuse_if_halted(settings, options, cat, view)
    return RunPlan(options, exp, cat, load, settings, view, dropped)


def expected_alerts_for_view(exp: xp.Experiment, cat: Catalogue, view: MetricView) -> tuple[xp.Experiment, list[str]]:
    """The experiment with only the expected alerts ``view`` can evaluate, and a line per one it dropped.

    Every expected alert must be in the alert catalogue. One reading a measure no profile of the view defines is
    left out of that view's rules (docs/alerts.yaml): it can never fire, so expecting it would be a fail the
    service did not earn. ``if_measured: true`` drops it (the run says so); otherwise :class:`RunError` names the
    field before anything starts.
    """
    if not exp.ext.expect_alerts:
        return exp, []
    from probes.alerts import AlertFileError, load_alerts, render

    try:
        alerts = load_alerts(catalogue=cat)
    except AlertFileError as exc:
        raise RunError(str(exc)) from None
    left_out = render(alerts, cat, view, title="(the run's view)").left_out
    kept, dropped = [], []
    for i, e in enumerate(exp.ext.expect_alerts):
        if e.alert not in alerts.names():
            raise RunError(f"{exp.path}: extensions[{xp.EXTENSION}].expect_alerts[{i}].alert: no alert {e.alert!r} "
                           f"in docs/alerts.yaml; alerts: {', '.join(alerts.names())}")
        if e.alert not in left_out:
            kept.append(e)
        elif e.if_measured:
            dropped.append(f"{e.alert} not expected: {left_out[e.alert]}")
        else:
            raise RunError(f"{exp.path}: extensions[{xp.EXTENSION}].expect_alerts[{i}].alert: {e.alert} cannot fire "
                           f"with metric profiles {', '.join(view.profiles)}: {left_out[e.alert]} (mark it "
                           "if_measured: true if the experiment expects it only where it is measured)")
    if not dropped:
        return exp, []
    return dataclasses.replace(exp, ext=exp.ext.model_copy(update={"expect_alerts": kept})), dropped


READ_API_SLOS = ("stale_tokens_served",)
"""SLOs that only a service with the read API can be judged on (its requests are the fault)."""


def _refuse_without_read_api(exp: xp.Experiment, cat: Catalogue, settings: TargetSettings) -> None:
    """An experiment whose fault calls the read API needs a service that has one, said before any fault."""
    slos = exp.ext.slos or cat.scenario(exp.ext.scenario).slos
    needs = [s for s in READ_API_SLOS if s in slos]
    if needs and not settings.reads_api:
        raise NotApplicable(f"{exp.path}: judged on {', '.join(needs)}, which needs the service's read API; the "
                            f"{settings.service} service has none (local: --service spring; a cluster: api_urls, "
                            "RESILIENCE_API_URLS)")


def _refuse_if_halted(settings: TargetSettings, options: RunOptions, cat: Catalogue, view: MetricView) -> None:
    """No run while the kill switch is set (:mod:`faults.killswitch`); ``--abort-if`` must name measures."""
    from faults.killswitch import HaltedError, refuse_if_halted
    from resilience.safeguards import validate_abort_if

    try:
        refuse_if_halted(settings, "resilience run")
        validate_abort_if(cat, view, options.abort_if)
    except (HaltedError, ValueError) as exc:
        raise RunError(str(exc)) from None


def _load(exp: xp.Experiment, options: RunOptions) -> dict[str, Any]:
    load: dict[str, Any] = {
        "shape": options.shape or exp.config_default("load_shape") or "steady",
        "rate_eps": options.rate if options.rate is not None else float(exp.config_default("load_rate") or 100),
        "duration_s": (options.duration if options.duration is not None
                       else float(exp.config_default("load_duration") or 120)),
        "seed": options.seed if options.seed is not None else int(exp.config_default("load_seed") or 0),
        **({"mix": exp.load_mix} if exp.load_mix else {}),
    }
    from loadtests.config import LoadConfigError, LoadSpec

    try:  # the load's own validation: unknown shape, rate or duration <= 0
        LoadSpec(bootstrap="127.0.0.1:1", shape=load["shape"], rate=load["rate_eps"], duration=load["duration_s"],
                 seed=load["seed"])
    except (LoadConfigError, ValueError) as exc:
        raise RunError(f"load: {exc}") from None
    return load


def _settings(options: RunOptions, profile: str) -> TargetSettings:
    """The target's settings: the command line over the target file and the environment; on the local
    stack, the data contract's events table is the one the stack's profile writes to."""
    from stack.profiles import events_table

    given: dict[str, Any] = {"target": options.target}
    service = options.service or (_stack_service(options) if options.target == "local" else None)
    if service:
        given["service"] = service
    if options.target == "local":
        given["stack_port_base"] = options.port_base
        given["contract"] = {"clickhouse_table": events_table(profile)}
        if options.data_dir:
            given["stack_data_dir"] = str(options.data_dir)
    for key, value in (("prometheus_url", options.prometheus_url), ("kafka_bootstrap", options.kafka_bootstrap),
                       ("metric_selector", options.metric_selector)):
        if value:
            given[key] = value
    if options.metric_profiles:
        given["metric_profiles"] = list(options.metric_profiles)
    if options.clickhouse:
        given["clickhouse_host"], given["clickhouse_port"] = options.clickhouse
    try:
        settings = resolve(given)
    except SettingsError as exc:
        raise RunError(str(exc)) from None
    missing = [flag for flag, key in (("--prometheus-url", "prometheus_url"), ("--kafka-bootstrap", "kafka_bootstrap"),
                                      ("--clickhouse", "clickhouse_host")) if not getattr(settings, key)]
    if missing:
        raise RunError(f"target {options.target} needs {', '.join(missing)} (or those keys in the file named by "
                       "RESILIENCE_TARGET_CONFIG)")
    return settings


def _stack_service(options: RunOptions) -> str | None:
    """The service a local stack at the run's port base was made with (``None``: no stack there yet)."""
    from stack.core import LocalStack
    from stack.errors import StackError

    try:
        stack = LocalStack(port_base=options.port_base, data_dir=options.data_dir)
    except StackError:
        return None
    return stack.ctx.service if (stack.data_dir / "stack.json").is_file() else None


def check_reachable(p: RunPlan) -> None:
    """Every endpoint the run depends on answers, before any fault (:class:`RunError` names the URL)."""
    import requests

    from loadtests.config import LoadConfigError, check_bootstrap

    auth = p.settings.prometheus_auth()
    try:
        requests.get(f"{p.prometheus_url}/-/ready", timeout=5, headers=auth.headers()).raise_for_status()
    except requests.HTTPError as exc:
        if exc.response is not None and exc.response.status_code in (401, 403):
            keys = ("prometheus_token",) if p.settings.prometheus_token else ("prometheus_username",
                                                                               "prometheus_password")
            where = ", ".join(f"{k} from {p.settings.source(k)}" for k in keys)
            raise RunError(f"Prometheus at {p.prometheus_url} refused {auth.describe()} ({where}): "
                           f"HTTP {exc.response.status_code}") from None
        raise RunError(f"Prometheus at {p.prometheus_url} is not reachable: {exc}") from None
    except requests.RequestException as exc:
        raise RunError(f"Prometheus at {p.prometheus_url} is not reachable: {exc}") from None
    check_logins(p)
    try:
        check_bootstrap(p.kafka_bootstrap, p.settings.topic, timeout=5, auth=p.settings.kafka_auth())
    except LoadConfigError as exc:
        raise RunError(str(exc)) from None
    if p.options.abort_if:
        from resilience.safeguards import validate_abort_if

        try:
            validate_abort_if(p.catalogue, p.view, p.options.abort_if, p.prometheus_url)
        except ValueError as exc:
            raise RunError(str(exc)) from None


def check_logins(p: RunPlan) -> None:
    """The target's Kafka and ClickHouse accept the suite's credentials (:mod:`target.settings`), before any
    fault: a wrong password is a :class:`RunError` naming the endpoint and the user, not an inconclusive
    verdict (or a hang) after the fault. Settings that cannot make a login (SASL without a user) are one too."""
    from clients import clickhouse as ch
    from clients import kafka as kafka_login
    from target.settings import SettingsError

    try:
        kafka_auth, ch_auth = p.settings.kafka_auth(), p.settings.clickhouse_auth()
    except SettingsError as exc:
        raise RunError(str(exc)) from None
    try:
        kafka_login.check_login(p.kafka_bootstrap, kafka_auth, timeout_s=10)
    except kafka_login.AuthError as exc:
        raise RunError(f"{exc} (credentials: {_sources(p.settings, 'kafka')})") from None
    except Exception as exc:  # unreachable: check_bootstrap names the address
        logger.info("Kafka login check at %s: %s: %s", p.kafka_bootstrap, type(exc).__name__, exc)
    host, port = p.clickhouse
    try:
        ch.check_login(host, port, ch_auth, timeout_s=10)
    except ch.AuthError as exc:
        raise RunError(f"{exc} (credentials: {_sources(p.settings, 'clickhouse')})") from None
    except Exception as exc:  # unreachable now: the data-loss verdict will say so if it stays so
        logger.warning("ClickHouse at %s:%s (%s) did not answer the login check: %s: %s", host, port,
                       ch_auth.describe(), type(exc).__name__, exc)


def _sources(settings: TargetSettings, store: str) -> str:
    """Where the user and password of ``store`` came from (``kafka_username from env ...``)."""
    keys = ("kafka_username", "kafka_password") if store == "kafka" else ("clickhouse_user", "clickhouse_password")
    return ", ".join(f"{k} from {settings.source(k)}" for k in keys)


def check_metrics(p: RunPlan) -> None:
    """Every measure the run reads exists at the target's Prometheus (:mod:`resilience.check_target`).

    A profile naming metrics this service does not export, or a selector matching nothing, would
    make every verdict inconclusive after the fault; it is a :class:`RunError` before it instead.
    """
    from resilience.check_target import check_measures, needed_measures

    scenario = p.catalogue.scenario(p.exp.ext.scenario)
    measures = needed_measures(p.catalogue, list(p.exp.ext.slos or scenario.slos),
                               [e.measure for e in p.exp.ext.expect_effect])
    try:
        checks = check_measures(p.catalogue, p.view, p.prometheus_url, measures)
    except prom.ProbeError as exc:
        raise RunError(str(exc)) from None
    bad = [c for c in checks if not c.usable]
    if bad:
        lines = "; ".join(f"{c.measure}: {c.detail}" for c in bad)
        raise RunError(f"the target's metrics do not fit metric profiles {list(p.view.profiles)} with selector "
                       f"{p.view.selector!r}: {lines} (resilience check-target lists every measure)")


def wait_observed(p: RunPlan, phase: Phase, timeout_s: float = 60.0) -> None:
    """Wait until Prometheus sees every expected replica ready (a stack just started has not been
    scraped yet); :class:`RunError` if it never does — the hypothesis would fail anyway."""
    try:
        query = p.catalogue.query("replicas_ready", p.view)
    except MeasureUndefined as exc:
        raise RunError(str(exc)) from None
    want = p.exp.ext.expected_replicas
    deadline = time.monotonic() + timeout_s
    seen = 0.0
    while True:
        try:
            seen = prom.instant(p.prometheus_url, query, timeout_s=3)
            if seen >= want:
                return
        except prom.ProbeError as exc:
            logger.info("waiting for Prometheus to see the replicas: %s", exc)
        if time.monotonic() > deadline:
            from resilience.check_target import check_measures

            why = "; ".join(c.detail for c in check_measures(p.catalogue, p.view, p.prometheus_url,
                                                             ["replicas_ready"]) if c.status == "missing")
            raise RunError(f"Prometheus at {p.prometheus_url} sees {seen:.0f} of {want} replicas ready "
                           f"after {timeout_s:.0f} s ({query}): " + (why or "is the service running?"))
        phase("stack", f"waiting for Prometheus to see {want} ready replicas ({seen:.0f} so far)")
        time.sleep(1)


def wait_assigned(p: RunPlan, phase: Phase, timeout_s: float = 60.0) -> None:
    """Wait until the service's consumer group holds every partition of the topic, and is not rebalancing.

    A replica is ready once it reaches its stores, with or without partitions (docs/metrics.md): right
    after ``up``, or after the previous run's restarts, the group may still be joining. A baseline taken
    then would time the rebalance, not the service, and a verdict would depend on when the run started.
    Kafka is asked directly (DescribeGroups), so this holds for any service and either target.
    :class:`RunError` if the group never settles — before any fault.
    """
    from clients.kafka_lag import GroupAssignment, LagReader

    deadline = time.monotonic() + timeout_s
    seen: GroupAssignment | None = None
    last_error = ""
    try:
        reader = LagReader(p.kafka_bootstrap, p.settings.consumer_group, p.settings.topic,
                           auth=p.settings.kafka_auth())
    except Exception as exc:
        raise RunError(f"Kafka at {p.kafka_bootstrap}: {type(exc).__name__}: {exc}") from None
    with reader:
        while True:
            try:
                seen = reader.assignment()
                if seen.complete:
                    return
                phase("stack", f"waiting for the consumer group to hold every partition: {seen.describe()}")
            except Exception as exc:  # the broker answers in a moment, or the deadline names it
                last_error = f"{type(exc).__name__}: {exc}"
                logger.info("waiting for the consumer group's assignment: %s", last_error)
            if time.monotonic() > deadline:
                what = seen.describe() if seen is not None else f"no answer ({last_error})"
                raise RunError(f"Kafka at {p.kafka_bootstrap}: after {timeout_s:.0f} s, {what}: the service's "
                               f"replicas do not consume the topic (consumer_group and topic of the target "
                               f"file, docs/staging.md)")
            time.sleep(1)


CARRIED_ALERT_WAIT_S = 300.0
"""How long a run waits for an expected alert carried over from before it (the longest expected alert's
window is 2 minutes, SLOViolation_Availability's, plus its resolution and a margin)."""


def wait_alerts_resolved(p: RunPlan, phase: Phase, timeout_s: float = CARRIED_ALERT_WAIT_S) -> list[str]:
    """Wait until no alert the experiment expects is pending or firing.

    One carried over from before the run (the previous scenario's disaster: SLOViolation_Availability keeps
    firing for its 2-minute window after the stores are back) makes that alert's verdict inconclusive
    whatever this fault does, so a gate's verdict depended on the order of its scenarios (cluster_loss after
    clickhouse_write_timeout, 2026-12-01). Bounded: after ``timeout_s`` the run goes on and the alert's
    verdict says it was already firing. Returns the expected alerts still active then (empty: all clear).
    """
    names = [a.alert for a in p.exp.ext.expect_alerts]
    deadline = time.monotonic() + timeout_s
    while names:
        try:
            active = [n for n in names if prom.instant(
                p.prometheus_url, f'count(ALERTS{{alertname="{prom.escape_label(n)}"}}) or vector(0)') > 0]
        except prom.ProbeError as exc:  # the run's own checks name an unreachable Prometheus
            logger.info("expected alerts not checked before the run: %s", exc)
            return []
        if not active:
            return []
        if time.monotonic() > deadline:
            logger.warning("%s still active %.0f s into the wait: its verdict will say it was already firing",
                           ", ".join(active), timeout_s)
            return active
        phase("stack", f"waiting for {', '.join(active)} to resolve: carried over from before the run, an alert "
                       "already active cannot show that this fault fired it")
        time.sleep(2)
    return []
