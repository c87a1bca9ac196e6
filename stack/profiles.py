"""The stack's profiles: which components run, in start order (Prometheus last: it scrapes the others).

``minimal``  one of each: Kafka, PostgreSQL, ClickHouse, toxiproxy, the audit-service replicas,
             the consumer-lag exporter (kafka_exporter's names), the pod-state exporter
             (kube-state-metrics' readiness names) and Prometheus.
``ha``       the production topology's redundancy on loopback: a Patroni pair with etcd, two
             ClickHouse shards of two replicas with ZooKeeper, three Kafka brokers. The audit service reaches
             every member through its own toxiproxy proxy (``postgres``/``postgres_2``,
             ``clickhouse``.. ``clickhouse_4``, ``kafka``/``kafka_2``/``kafka_3``) with a multi-host
             PostgreSQL conninfo (``target_session_attrs=read-write``), clickhouse-driver
             ``alt_hosts`` and all three brokers as bootstrap. ClickHouse has two shards of two
             replicas; events go through the ``Distributed`` table ``audit_events_all``.
"""

from __future__ import annotations

import dataclasses

from stack.components import (
    audit_service,
    clickhouse,
    etcd,
    kafka,
    lag_exporter,
    patroni,
    pod_state_exporter,
    postgres,
    prometheus,
    spring_service,
    toxiproxy,
    zookeeper,
)
from stack.components.base import Component
from stack.context import StackContext
from stack.endpoints import HOST

__all__ = ["PROFILES", "SERVICES", "components_for", "events_table"]

PROFILES = ("minimal", "ha")
SERVICES = ("python", "spring")
"""Which audit service the replicas run: ``python`` (default: ``sqlaudit/``, 3 s to readiness, ~90 MiB a
replica) or ``spring`` (``services/spring``: Spring Boot as the operations guide describes it, ~30-100 s and
~250 MiB a replica; docs/benchmarks.md)."""


def events_table(profile: str) -> str:
    """The ClickHouse table that holds every event of a stack of ``profile`` (the sharded ha profile's is the
    ``Distributed`` table: one server's local table holds one shard's part)."""
    return clickhouse.DISTRIBUTED_TABLE if profile == "ha" else clickhouse.LOCAL_TABLE


def components_for(ctx: StackContext) -> list[Component]:
    """All components of ``ctx.profile`` in start order."""
    if ctx.profile not in PROFILES:
        raise ValueError(f"unknown profile {ctx.profile!r}; known: {', '.join(PROFILES)}")
    if ctx.service not in SERVICES:
        raise ValueError(f"unknown service {ctx.service!r}; known: {', '.join(SERVICES)}")
    if ctx.profile == "ha":
        return _ha(ctx)
    comps = [toxiproxy.toxiproxy(ctx), postgres.postgres(ctx), clickhouse.clickhouse(ctx), kafka.kafka(ctx)]
    replicas = _replicas(ctx)
    comps.extend(replicas)
    comps.extend(lag_exporter.lag_exporter(ctx, ctx.endpoints.kafka_bootstrap))
    comps.extend(pod_state_exporter.pod_state_exporter(ctx, replicas, audit_service.GROUP))
    comps.append(prometheus.prometheus(ctx, comps))
    return comps


def _replicas(ctx: StackContext) -> list[Component]:
    """The audit-service replicas of ``ctx.service`` (same names, ports and group either way)."""
    if ctx.service == "spring":
        return spring_service.spring_service(ctx)
    return audit_service.audit_service(ctx)


def _ha(ctx: StackContext) -> list[Component]:
    comps: list[Component] = [toxiproxy.toxiproxy(ctx), etcd.etcd(ctx), zookeeper.zookeeper(ctx)]
    comps.extend(patroni.member(ctx, m) for m in patroni.PG_MEMBERS)
    comps.extend(clickhouse.replica(ctx, r) for r in clickhouse.CH_REPLICAS)
    comps.extend(kafka.node(ctx, b) for b in kafka.BROKERS)
    if ctx.service == "spring":
        replicas = spring_service.spring_service(ctx)  # its own HA addresses (JDBC multi-host, HTTP URLs)
    else:
        # Stack-level overrides in ctx.extra still win over the HA addresses.
        service_ctx = dataclasses.replace(ctx, extra={**_ha_service_environment(ctx), **ctx.extra})
        replicas = audit_service.audit_service(service_ctx)
    comps.extend(replicas)
    # The exporter bootstraps from every broker, so one broker down does not blind it.
    comps.extend(lag_exporter.lag_exporter(ctx, kafka.kafka_bootstrap_direct(ctx)))
    comps.extend(pod_state_exporter.pod_state_exporter(ctx, replicas, audit_service.GROUP))
    comps.append(prometheus.prometheus(ctx, comps))
    return comps


def _ha_service_environment(ctx: StackContext) -> dict[str, str]:
    """What the audit-service replicas need to reach every ha member through its proxy."""
    eps = ctx.endpoints
    brokers = ",".join(f"{HOST}:{eps.port(b.proxy)}" for b in kafka.BROKERS)
    pg_hosts = ",".join(f"{HOST}:{eps.port(p)}" for p in ("proxy_postgres", "proxy_postgres_2"))
    return {
        "SQLAUDIT_KAFKA_BOOTSTRAP": brokers,
        "SQLAUDIT_PG_DSN": f"postgresql://{ctx.pg_user}@{pg_hosts}/{ctx.pg_database}?target_session_attrs=read-write",
        # Any ClickHouse server takes the insert into the Distributed table, synchronously: it returns
        # once every shard holds its part (SQLAUDIT_CH_TABLE, insert_distributed_sync in the sink).
        "SQLAUDIT_CH_ALT_HOSTS": ",".join(f"{HOST}:{eps.port(p)}" for p in
                                          ("proxy_clickhouse_2", "proxy_clickhouse_3", "proxy_clickhouse_4")),
        "SQLAUDIT_CH_TABLE": clickhouse.DISTRIBUTED_TABLE,
    }
