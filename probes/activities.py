"""Chaos Toolkit probes: measurements for steady-state hypotheses and for the method.

Each probe returns a number (or a dict) that an experiment's tolerance judges; none
judges by itself. A probe raises ``ActivityFailed`` only when nothing could be
measured — Prometheus or Kafka unreachable, no data — and says what and where.
Endpoints come from the settings model (``target/settings.py``) through ``probes/endpoints.py``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.kafka_lag import LagReader
from faults import journal
from probes import prom
from probes.dataloss import account, read_stored, wait_drained
from probes.endpoints import ProbeEndpoints
from probes.evaluate import RunWindow, recovery_measurement, rto_data_flow, rto_postgres_writable, rto_replicas_ready
from probes.recovery import RecoveryStatus
from probes.slo import MeasureUndefined
from target.settings import resolve

logger = logging.getLogger(__name__)

RECOVERY_CONDITIONS = ("replicas_ready", "data_flow", "postgres_writable")

__all__ = ["config_in_effect", "consumer_lag", "data_loss", "drain", "error_ratio", "latency_p95_seconds",
           "ready_replicas", "recovery_seconds", "slo_value", "throughput_eps"]


def _query(s: ProbeEndpoints, measure: str, window: str = "1m") -> str:
    """The PromQL of ``measure`` for this target's metric view; ``ActivityFailed`` if no profile defines it."""
    try:
        return s.catalogue().query(measure, s.view(), window=window)
    except MeasureUndefined as exc:
        raise ActivityFailed(str(exc)) from None


def consumer_lag(configuration: Configuration | None = None, secrets: Secrets | None = None) -> int:
    """Total lag of the audit service's consumer group, read from Kafka (committed vs end offsets).

    Independent of the service and of Prometheus: a dead service still has a lag.

    Returns:
        Events produced but not yet committed by the group, over every partition.

    Raises:
        ActivityFailed: Kafka could not be read.
    """
    s = ProbeEndpoints.from_configuration(configuration)
    try:
        with LagReader(s.kafka_bootstrap, s.consumer_group, s.topic, auth=s.settings.kafka_auth()) as reader:
            return reader.read().total
    except Exception as exc:
        raise ActivityFailed(f"consumer lag of {s.consumer_group} on {s.topic} via Kafka at {s.kafka_bootstrap}: "
                             f"{type(exc).__name__}: {exc}") from None


def ready_replicas(configuration: Configuration | None = None, secrets: Secrets | None = None) -> int:
    """Replicas of the service whose readiness probe answers UP, from Prometheus (0 when none report).

    Raises:
        ActivityFailed: Prometheus unreachable.
    """
    s = ProbeEndpoints.from_configuration(configuration)
    return int(prom.instant(s.prometheus_url, _query(s, "replicas_ready")))


def slo_value(slo_id: str, window_s: int = 60, configuration: Configuration | None = None,
              secrets: Secrets | None = None) -> float:
    """The current value of a PromQL SLO of ``docs/slo.yaml`` over the last ``window_s`` seconds.

    Args:
        slo_id: an SLO measured by PromQL (e.g. ``latency_p95``, ``error_rate``, ``consumer_lag_warning``).
        window_s: the evaluation window.

    Raises:
        ActivityFailed: unknown SLO, Prometheus unreachable, or no data (e.g. no events in the window).
    """
    s = ProbeEndpoints.from_configuration(configuration)
    cat = s.catalogue()
    try:
        query = cat.promql(slo_id, s.view(), window=f"{int(window_s)}s")
    except (KeyError, ValueError) as exc:
        raise ActivityFailed(str(exc)) from None
    return prom.instant(s.prometheus_url, query)


def latency_p95_seconds(kind: str = "processing", window_s: int = 30, configuration: Configuration | None = None,
                        secrets: Secrets | None = None) -> float:
    """p95 latency over the last ``window_s`` seconds: ``processing`` (consumed → durable) or ``end_to_end``.

    Raises:
        ActivityFailed: bad ``kind``, Prometheus unreachable, or no events processed in the window.
    """
    ids = {"processing": "latency_p95", "end_to_end": "latency_p95_end_to_end"}
    if kind not in ids:
        raise ActivityFailed(f"latency kind {kind!r}: expected processing or end_to_end")
    return slo_value(ids[kind], window_s, configuration, secrets)


def error_ratio(window_s: int = 60, configuration: Configuration | None = None,
                secrets: Secrets | None = None) -> float:
    """Invalid or failed events / consumed events over the last ``window_s`` seconds.

    Raises:
        ActivityFailed: Prometheus unreachable or no data.
    """
    return slo_value("error_rate", window_s, configuration, secrets)


def throughput_eps(window_s: int = 30, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> float:
    """Events made durable per second over the last ``window_s`` seconds, all replicas.

    Raises:
        ActivityFailed: Prometheus unreachable or no data.
    """
    s = ProbeEndpoints.from_configuration(configuration)
    return prom.instant(s.prometheus_url, _query(s, "processed_rate", f"{int(window_s)}s"))


def drain(timeout_s: float = 120.0, configuration: Configuration | None = None,
          secrets: Secrets | None = None) -> dict[str, Any]:
    """Wait until the consumer group's lag (from Kafka) is 0; returns ``{drained, waited_s, lag, reason}``.

    A pipeline that does not drain makes data-loss verdicts inconclusive; this probe
    reports it rather than failing.
    """
    s = ProbeEndpoints.from_configuration(configuration)
    d = wait_drained(s.kafka_bootstrap, s.consumer_group, s.topic, timeout_s=timeout_s, auth=s.settings.kafka_auth())
    return {"drained": d.drained, "waited_s": round(d.waited_s, 1), "lag": d.last.total if d.last else None,
            "reason": d.reason}


def config_in_effect(checker: str, field: str, configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> list[Any]:
    """The value of ``<checker>.<field>`` each replica is running with, from its ``/actuator/configprops``.

    Replicas are found from the local stack (``expected_replicas`` of them), or listed in
    ``replica_urls`` (base URLs) for the kubernetes target. Two shapes are read: the reference service's
    (``checkers.<checker>.<field>``) and Spring Boot's (``contexts.*.beans.*`` whose ``prefix`` ends in
    ``checkers``, names in camelCase: ``slowQuery.thresholdMs``). Spring Boot shows the values only to an
    authenticated caller (``management.endpoint.configprops.show-values: when-authorized``): where the
    service has the read API the request carries one of its tokens.

    Returns:
        One value per replica, in replica order (equal values: the change took effect everywhere).

    Raises:
        ActivityFailed: a replica did not answer, does not report that field, or hides its value.
    """
    import jwt
    import requests

    settings = resolve(configuration)
    urls = settings.replica_base_urls("config_in_effect")
    headers = {}
    if settings.has_read_api:
        now = int(time.time())
        key = settings.api_token_key("config_in_effect")
        headers["Authorization"] = "Bearer " + jwt.encode({"sub": "resilience", "iat": now, "exp": now + 60}, key,
                                                          algorithm="HS256")
    values = []
    for url in urls:
        try:
            props = requests.get(f"{url.rstrip('/')}/actuator/configprops", headers=headers, timeout=5).json()
            value = _configprop(props, checker, field)
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise ActivityFailed(f"configprops of {url}: {checker}.{field} not readable: "
                                 f"{type(exc).__name__}: {exc}") from None
        if value == "******":
            raise ActivityFailed(f"configprops of {url}: {checker}.{field} is hidden (Spring Boot's "
                                 "management.endpoint.configprops.show-values)")
        values.append(value)
    return values


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _configprop(props: dict[str, Any], checker: str, field: str) -> Any:
    if "checkers" in props:  # the reference service's own shape
        return props["checkers"][checker][field]
    for context in props["contexts"].values():
        for bean in context["beans"].values():
            if str(bean.get("prefix", "")).split(".")[-1] == "checkers":
                return bean["properties"][_camel(checker)][_camel(field)]
    raise KeyError("no bean with the prefix *.checkers")


def _fault_window(s: ProbeEndpoints) -> tuple[float, float | None]:
    """Start and end of the run's first fault, from the fault journal (:func:`faults.journal.fault_window`)."""
    state_dir = s.settings.fault_state_dir
    window = journal.fault_window(state_dir, s.run_id)
    if window is None:
        raise ActivityFailed(f"no fault recorded for run {s.run_id} in {state_dir}")
    return window.start, window.end


def recovery_seconds(condition: str = "replicas_ready", stabilization_s: float = 10.0, observe_s: float = 0.0,
                     configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Recovery time (RTO) of the run's fault, at the resolution of the readiness scrapes.

    Args:
        condition: ``replicas_ready`` (every expected replica ready again), ``data_flow`` (lag under
            the warning level and end-to-end p95 under 500 ms) or ``postgres_writable`` (PostgreSQL
            takes the service's writes again).
        stabilization_s: how long the condition must hold to count as recovered.
        observe_s: keep observing until this many seconds after the fault's start, and return as soon
            as the condition has recovered, or as soon as the result cannot change (the condition did not
            hold before the fault: inconclusive whatever follows); ``0`` measures once, now. Set it to the
            scenario's RTO objective (plus the stabilisation) so a system that never recovers is observed
            long enough to fail, and one that recovers does not keep the run waiting.

    Returns:
        ``{"status": recovered|never_recovered|inconclusive, "rto_s": float | None, "reason": str,
        "observed_s": float}``.

    Raises:
        ActivityFailed: no fault recorded for the run, an unknown condition, or Prometheus unreachable.
    """
    if condition not in RECOVERY_CONDITIONS:
        raise ActivityFailed(f"condition {condition!r}: expected one of {', '.join(RECOVERY_CONDITIONS)}")
    s = ProbeEndpoints.from_configuration(configuration)
    start, _ = _fault_window(s)
    cat, view = s.catalogue(), s.view()
    deadline = start + float(observe_s)
    # The run's own start, as the judge's window has it: the baseline before the fault is read from there, so
    # a baseline out of SLO settles the result here as it will in the judge (from the fault's start there is
    # no baseline, nothing settles, and a quiet HA run watched for 6.5 min, 2026-12-02).
    run_start = min(s.settings.run_started_at or start, start)
    while True:
        now = time.time()
        window = RunWindow(start=run_start, end=now, fault_start=start)
        if condition == "replicas_ready":
            rec = rto_replicas_ready(cat, view, s.prometheus_url, window, s.expected_replicas, stabilization_s)
        elif condition == "data_flow":
            rec = rto_data_flow(cat, view, s.prometheus_url, window, stabilization_s)
        else:
            rec = rto_postgres_writable(cat, view, s.prometheus_url, window, stabilization_s)
        if rec.status is RecoveryStatus.RECOVERED or rec.settled or now >= deadline:
            break  # settled: the baseline already made it inconclusive (a 30 min watch would change nothing)
        time.sleep(min(2.0, max(0.1, deadline - now)))
    m = recovery_measurement(rec)
    return {"status": rec.status.value, "rto_s": rec.rto_s, "reason": m.reason, "observed_s": round(now - start, 1)}


def data_loss(drain_timeout_s: float = 120.0, configuration: Configuration | None = None,
              secrets: Secrets | None = None) -> dict[str, Any]:
    """Acknowledged events (the ledger) missing from ClickHouse once the pipeline has drained.

    Returns:
        ``{"status": measured|inconclusive, "lost": n, "lost_ids": [...], "rpo_s": s, "duplicated": n,
        "late": n, "acknowledged": n, ...}``; inconclusive when the pipeline did not drain or the
        ledger is empty.

    Raises:
        ActivityFailed: no ledger configured or readable, or ClickHouse unreachable.
    """
    from loadtests.ledger import LedgerError, read_ledger

    s = ProbeEndpoints.from_configuration(configuration)
    if s.ledger_dir is None:
        raise ActivityFailed("configuration ledger_dir is required to account for data loss")
    try:
        ledger = read_ledger(s.ledger_dir, strict=False)
    except (LedgerError, OSError) as exc:
        raise ActivityFailed(f"ledger at {s.ledger_dir}: {exc}") from None
    if ledger.count == 0:
        return {"status": "inconclusive", "reason": f"the ledger at {s.ledger_dir} holds no acknowledged event"}
    d = wait_drained(s.kafka_bootstrap, s.consumer_group, s.topic, timeout_s=drain_timeout_s,
                     auth=s.settings.kafka_auth())
    if not d.drained:
        return {"status": "inconclusive", "reason": d.reason, "acknowledged": ledger.count}
    try:
        fault_ms: int | None = int(_fault_window(s)[0] * 1000)
    except ActivityFailed:
        fault_ms = None
    acked = {r.event_id: r.produced_at for r in ledger.acked.values()}
    first, last = min(acked.values()), max(acked.values())
    stored = read_stored(s.clickhouse_host, s.clickhouse_port, first, last, s.settings.contract,
                         auth=s.settings.clickhouse_auth())
    return {"status": "measured", **account(acked, stored, fault_ms).as_dict()}
