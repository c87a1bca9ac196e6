"""The Spring Boot audit-service replicas of a local stack (``services/spring``), one JVM per replica.

The same places in the stack as the Python replicas (:mod:`stack.components.audit_service`): the
programs are named ``audit-service-<i>``, listen on ``Endpoints.replica_port(i)``, reach Kafka,
PostgreSQL and ClickHouse through toxiproxy (the ClickHouse proxies lead to its HTTP port, which the
Spring sink speaks), and are supervised and restarted like pods. So every fault, the pod-state
exporter and the data-loss checks act on them unchanged; only how their metrics are read differs
(Prometheus scrapes ``/actuator/prometheus``; the ``micrometer`` metric profile reads them).

``services/spring/run.sh`` execs the JVM (so the supervised pid is the JVM's and SIGTERM reaches
Spring Boot), with a 256 MiB heap: three replicas fit two cores and a few GiB. The jar is built at
``prepare`` if the cache lacks it (``services/spring/build.sh``; install.sh builds it too). Secrets
(the PostgreSQL password, the read API's JWT key) go in the environment, never on a command line.
"""

from __future__ import annotations

import subprocess

import requests

from stack.components import clickhouse
from stack.components.audit_service import GROUP, checkers_file, copy_checkers, replica_name
from stack.components.base import Check, Component
from stack.context import StackContext
from stack.endpoints import CONSUMER_GROUP, HOST
from stack.errors import ComponentError, MissingToolError
from stack.paths import REPO_ROOT

__all__ = ["METRICS_PATH", "RUN_SCRIPT", "STARTUP_TIMEOUT", "spring_service"]

SERVICE_DIR = REPO_ROOT / "services" / "spring"
RUN_SCRIPT = SERVICE_DIR / "run.sh"
BUILD_SCRIPT = SERVICE_DIR / "build.sh"
METRICS_PATH = "/actuator/prometheus"
STARTUP_TIMEOUT = 420.0
"""Seconds a replica may take to become ready: 29-105 s were measured on the busy 2-core VM
(docs/benchmarks.md), three replicas start at once, and a cold first start also builds the jar."""

#: Stack-level overrides (``ctx.extra``) a Spring replica takes: its own variables and the checker thresholds.
_PASSED_THROUGH = ("SPRING_", "SQLAUDIT_CHECK_", "SQLAUDIT_CHECKERS_", "SQLAUDIT_JAVA_OPTS", "SQLAUDIT_RETRY_",
                   "SQLAUDIT_CLICKHOUSE_TIMEOUT")


def _readiness(name: str, port: int, first: bool) -> Check:
    """Readiness UP; while starting (``first``) also the metrics rendered once, which a cold JVM takes seconds
    for (5.3 s measured at load average 18, then 0.2-0.5 s): Prometheus' first scrapes must not time out."""
    url = f"http://{HOST}:{port}/actuator/health/readiness"
    metrics = f"http://{HOST}:{port}{METRICS_PATH}"

    def check(ctx: StackContext) -> str:
        try:
            resp = requests.get(url, timeout=5)
        except requests.RequestException as exc:
            raise ComponentError(name, f"{url}: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise ComponentError(name, f"not ready: HTTP {resp.status_code} {resp.text[:200]}")
        if first:
            try:
                requests.get(metrics, timeout=30).raise_for_status()
            except requests.RequestException as exc:
                raise ComponentError(name, f"{metrics}: {type(exc).__name__}: {exc}") from None
            return "ready (Spring readiness group UP), serving its metrics"
        return "ready (Spring readiness group UP)"

    return check


def _build_jar(ctx: StackContext) -> None:
    """The service's jar in the cache (a no-op when it is there); a failed build names the script."""
    try:
        out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-jar"], capture_output=True, text=True,
                             timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MissingToolError(f"{BUILD_SCRIPT}: {exc}") from None
    if out.returncode != 0:
        raise MissingToolError(f"{BUILD_SCRIPT} failed (exit {out.returncode}): {out.stderr[-1500:]}")


def _prepare(ctx: StackContext) -> None:
    _build_jar(ctx)
    copy_checkers(ctx)


def _store_environment(ctx: StackContext) -> dict[str, str]:
    """Kafka, PostgreSQL and ClickHouse as the replicas reach them: every address a toxiproxy proxy."""
    eps = ctx.endpoints
    if ctx.profile == "ha":
        from stack.components import kafka

        brokers = ",".join(f"{HOST}:{eps.port(b.proxy)}" for b in kafka.BROKERS)
        pg_hosts = ",".join(f"{HOST}:{eps.port(p)}" for p in ("proxy_postgres", "proxy_postgres_2"))
        ch_urls = ",".join(f"http://{HOST}:{eps.port(p)}" for p in
                           ("proxy_clickhouse", "proxy_clickhouse_2", "proxy_clickhouse_3", "proxy_clickhouse_4"))
        table = clickhouse.DISTRIBUTED_TABLE
    else:
        brokers = eps.kafka_bootstrap_service
        pg_hosts = f"{HOST}:{eps.port('proxy_postgres')}"
        ch_urls = f"http://{HOST}:{eps.port('proxy_clickhouse')}"
        table = clickhouse.LOCAL_TABLE
    return {
        "SPRING_KAFKA_BOOTSTRAP_SERVERS": brokers,
        "SPRING_DATASOURCE_URL": f"jdbc:postgresql://{pg_hosts}/{ctx.pg_database}?targetServerType=primary",
        "SPRING_DATASOURCE_USERNAME": ctx.pg_user,
        "SPRING_DATASOURCE_PASSWORD": ctx.secrets.postgres_password,
        "SQLAUDIT_CLICKHOUSE_URLS": ch_urls,
        "SQLAUDIT_CLICKHOUSE_DATABASE": ctx.ch_database,
        "SQLAUDIT_CLICKHOUSE_TABLE": table,
    }


def spring_service(ctx: StackContext) -> list[Component]:
    """One :class:`Component` per replica (``ctx.replicas``), named ``audit-service-<i>`` like the Python ones."""
    eps = ctx.endpoints
    stores = _store_environment(ctx)
    comps: list[Component] = []
    for i in range(ctx.replicas):
        name = replica_name(i)
        port = eps.replica_port(i)
        env = {
            **stores,
            "SQLAUDIT_REPLICA": name,
            "SQLAUDIT_HTTP_PORT": str(port),
            "SERVER_ADDRESS": HOST,
            "SQLAUDIT_TOPIC": ctx.topic,
            "SQLAUDIT_DLQ_TOPIC": ctx.dlq_topic,
            "SQLAUDIT_GROUP_ID": CONSUMER_GROUP,
            "SQLAUDIT_JWT_SECRET": ctx.secrets.jwt_secret,
            # A copy the config-change fault can edit (the Spring service reads the Python YAML format).
            "SQLAUDIT_CHECKERS_CONFIG": str(checkers_file(ctx)),
        }
        env.update({k: v for k, v in ctx.extra.items() if k.startswith(_PASSED_THROUGH)})
        comps.append(Component(
            name=name,
            command=["bash", str(RUN_SCRIPT)],
            ports=[],  # replica ports are port("audit_service") + i, not named in the port plan
            probe=_readiness(name, port, first=True),
            health=_readiness(name, port, first=False),
            prepare=_prepare if i == 0 else None,
            environment=env,
            stopsignal="TERM",
            stopwaitsecs=40,  # Spring Boot's graceful shutdown phase is 30 s
            startup_timeout=STARTUP_TIMEOUT,
            metrics=f"{HOST}:{port}",
            metrics_path=METRICS_PATH,
            # ``pod`` as a cluster's scrape sets it: the micrometer profile's per-replica measures group by it
            # (replica_alive, heap_used_ratio...); without it every replica fell into one series.
            metrics_labels={"replica": name, "pod": name},
            endpoint=f"http://{HOST}:{port}/actuator/health/readiness",
            group=GROUP,
        ))
    return comps
