"""The audit-service replicas of a local stack: ``python -m sqlaudit``, one process per replica.

Each replica is supervised like a pod (restarted when it dies), has its own HTTP port
(``Endpoints.replica_port(i)``: metrics and health) and reaches Kafka, PostgreSQL and
ClickHouse through toxiproxy, so network faults injected there bite. The PostgreSQL
password goes to the replica in its environment (``SQLAUDIT_PG_PASSWORD``), never on its
command line; so do a secure stack's Kafka and ClickHouse logins (``SQLAUDIT_KAFKA_*``,
``SQLAUDIT_CH_USER``/``SQLAUDIT_CH_PASSWORD``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import requests

from sqlaudit.config import DEFAULT_CHECKERS_FILE
from stack.components.base import Check, Component
from stack.context import StackContext
from stack.endpoints import CONSUMER_GROUP, HOST
from stack.errors import ComponentError
from stack.paths import REPO_ROOT
from stack.security import CH_SERVICE_USER, KAFKA_SERVICE_USER, kafka_client_environment

__all__ = ["GROUP", "audit_service", "checkers_file", "copy_checkers", "replica_name"]

GROUP = "audit-service"


def replica_name(index: int) -> str:
    """Supervisor program name (and ``replica`` label) of replica ``index``."""
    return f"audit-service-{index}"


def _readiness(name: str, port: int) -> Check:
    url = f"http://{HOST}:{port}/actuator/health/readiness"

    def check(ctx: StackContext) -> str:
        try:
            resp = requests.get(url, timeout=2)
        except requests.RequestException as exc:
            raise ComponentError(name, f"{url}: {type(exc).__name__}") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        details = body.get("details", {})
        if resp.status_code != 200:
            reasons = "; ".join(details.get("reasons", [])) or f"HTTP {resp.status_code}"
            raise ComponentError(name, f"not ready: {reasons}")
        return f"ready, partitions {details.get('partitions')}"

    return check


def checkers_file(ctx: StackContext) -> Path:
    """The replicas' checker thresholds: a copy of ``sqlaudit/checkers.yaml`` made at ``up``."""
    return ctx.conf_dir / "checkers.yaml"


def copy_checkers(ctx: StackContext) -> None:
    """Copy the packaged ``sqlaudit/checkers.yaml`` to :func:`checkers_file` (both services read that format)."""
    dest = checkers_file(ctx)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEFAULT_CHECKERS_FILE, dest)


def _secure_environment(ctx: StackContext) -> dict[str, str]:
    """A secure stack's logins for the replicas: Kafka SASL_SSL as ``sqlaudit``, ClickHouse user ``sqlaudit``
    (:mod:`stack.security`); nothing on a plain stack."""
    if not ctx.secure:
        return {}
    return {**kafka_client_environment(ctx, "SQLAUDIT_", KAFKA_SERVICE_USER, ctx.secrets.kafka_service_password),
            "SQLAUDIT_CH_USER": CH_SERVICE_USER, "SQLAUDIT_CH_PASSWORD": ctx.secrets.clickhouse_service_password}


def audit_service(ctx: StackContext) -> list[Component]:
    """One :class:`Component` per replica (``ctx.replicas``), named ``audit-service-<i>``."""
    eps = ctx.endpoints
    pg_port = eps.port("proxy_postgres")
    # URL form (no spaces or commas: supervisor's environment syntax stays simple).
    pg_dsn = f"postgresql://{ctx.pg_user}@{HOST}:{pg_port}/{ctx.pg_database}?target_session_attrs=read-write"
    comps: list[Component] = []
    for i in range(ctx.replicas):
        name = replica_name(i)
        port = eps.replica_port(i)
        env = {
            "SQLAUDIT_REPLICA": name,
            "SQLAUDIT_HTTP_HOST": HOST,
            "SQLAUDIT_HTTP_PORT": str(port),
            "SQLAUDIT_KAFKA_BOOTSTRAP": eps.kafka_bootstrap_service,
            "SQLAUDIT_TOPIC": ctx.topic,
            "SQLAUDIT_DLQ_TOPIC": ctx.dlq_topic,
            "SQLAUDIT_GROUP_ID": CONSUMER_GROUP,
            "SQLAUDIT_CH_HOST": HOST,
            "SQLAUDIT_CH_PORT": str(eps.clickhouse_port_service),
            "SQLAUDIT_CH_DATABASE": ctx.ch_database,
            "SQLAUDIT_PG_DSN": pg_dsn,
            "SQLAUDIT_PG_PASSWORD": ctx.secrets.postgres_password,
            # A copy the config-change fault can edit (the packaged file stays untouched).
            "SQLAUDIT_CHECKERS_CONFIG": str(checkers_file(ctx)),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO_ROOT),
        }
        env.update(_secure_environment(ctx))
        # Stack-level overrides (e.g. SQLAUDIT_BATCH_SIZE) travel in ctx.extra.
        env.update({k: v for k, v in ctx.extra.items() if k.startswith("SQLAUDIT_") and k != "SQLAUDIT_PG_PASSWORD"})
        check = _readiness(name, port)
        comps.append(Component(
            name=name,
            command=[sys.executable, "-m", "sqlaudit"],
            ports=[],  # replica ports are port("audit_service") + i, not named in the port plan
            probe=check,
            health=check,
            prepare=copy_checkers if i == 0 else None,
            environment=env,
            stopsignal="TERM",
            stopwaitsecs=30,  # the replica's own shutdown deadline is 20 s
            startup_timeout=60,
            metrics=f"{HOST}:{port}",
            metrics_labels={"replica": name},
            endpoint=f"http://{HOST}:{port}/actuator/health/readiness",
            group=GROUP,
        ))
    return comps
