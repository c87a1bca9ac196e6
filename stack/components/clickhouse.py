"""ClickHouse: one server (minimal profile) or two replicas of a replicated table (ha profile).

The ha replicas (``clickhouse``, ``clickhouse-2``) hold a ``ReplicatedReplacingMergeTree``
``sqlaudit.audit_events`` coordinated by ZooKeeper (:mod:`stack.components.zookeeper`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from stack.components.base import SCHEMA_DIR, Component, render, sql_statements
from stack.context import StackContext
from stack.endpoints import HOST
from stack.errors import ComponentError

MAX_REPLICATION_QUEUE = 50  # replica health: more queued entries than this is "behind"


def clickhouse(ctx: StackContext) -> Component:
    conf = ctx.conf_dir / "clickhouse"
    data = ctx.data_dir / "clickhouse"
    eps = ctx.endpoints

    def prepare(c: StackContext) -> None:
        data.mkdir(parents=True, exist_ok=True)
        values = dict(logs=c.log_dir, http_port=eps.port("clickhouse_http"), tcp_port=eps.port("clickhouse_tcp"),
                      interserver_port=eps.port("clickhouse_interserver"), data=data, conf=conf, extra="")
        render("clickhouse-config.xml.tmpl", conf / "config.xml", **values)
        render("clickhouse-users.xml.tmpl", conf / "users.xml", **values)

    def _query(c: StackContext, q: str) -> list:
        from clickhouse_driver import Client

        client = Client(host=c.endpoints.clickhouse_host, port=c.endpoints.clickhouse_port,
                        connect_timeout=3, send_receive_timeout=10)
        try:
            return client.execute(q)
        finally:
            client.disconnect()

    def probe(c: StackContext) -> str:
        # A plain TCP connect first: the driver logs a traceback for every refused connection.
        with socket.create_connection((c.endpoints.clickhouse_host, c.endpoints.clickhouse_port), timeout=2):
            pass
        _query(c, "SELECT 1")
        return "SELECT 1 ok"

    def bootstrap(c: StackContext) -> str:
        for stmt in sql_statements((SCHEMA_DIR / "clickhouse.sql").read_text()):
            _query(c, stmt)
        return "database and audit_events present"

    def health(c: StackContext) -> str:
        version = _query(c, "SELECT version()")[0][0]
        _query(c, f"SELECT count() FROM {c.ch_database}.audit_events")
        return f"SELECT 1 ok, version {version}"

    return Component(
        name="clickhouse",
        command=[str(ctx.tools.clickhouse_server), f"--config-file={conf / 'config.xml'}"],
        ports=["clickhouse_tcp", "clickhouse_http", "clickhouse_interserver"],
        prepare=prepare,
        probe=probe,
        bootstrap=bootstrap,
        health=health,
        startup_timeout=60,
        endpoint=f"clickhouse://127.0.0.1:{eps.port('clickhouse_tcp')}/{ctx.ch_database}",
    )


@dataclass(frozen=True)
class ChReplica:
    index: int
    program: str
    replica: str
    tcp: str
    http: str
    interserver: str
    data: str


CH_REPLICAS = (ChReplica(0, "clickhouse", "ch1", "clickhouse_tcp", "clickhouse_http", "clickhouse_interserver",
                         "clickhouse"),
               ChReplica(1, "clickhouse-2", "ch2", "clickhouse_tcp_2", "clickhouse_http_2",
                         "clickhouse_interserver_2", "clickhouse-2"))


def query(ctx: StackContext, rep: ChReplica, q: str, timeout: float = 10.0) -> list[Any]:
    from clickhouse_driver import Client

    client = Client(host=HOST, port=ctx.endpoints.port(rep.tcp), connect_timeout=3, send_receive_timeout=timeout)
    try:
        return list(client.execute(q))
    finally:
        client.disconnect()


def replicated_schema(ctx: StackContext) -> list[str]:
    """``sqlaudit/schema/clickhouse.sql`` with the engine made replicated (one source of the columns)."""
    script = (SCHEMA_DIR / "clickhouse.sql").read_text()
    engine = "ENGINE = ReplacingMergeTree(stored_at_ms)"
    if engine not in script:
        raise ComponentError("clickhouse", f"{SCHEMA_DIR / 'clickhouse.sql'}: expected {engine!r} to replicate")
    replicated = ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/sqlaudit/audit_events', "
                  "'{replica}', stored_at_ms)")
    return sql_statements(script.replace(engine, replicated))


def clickhouse_replica_status(ctx: StackContext, rep: ChReplica, timeout: float = 10.0) -> dict[str, Any]:
    """``system.replicas`` of ``sqlaudit.audit_events`` on replica ``rep`` (raises if unreachable)."""
    cols = ("is_readonly", "is_session_expired", "queue_size", "inserts_in_queue", "absolute_delay",
            "total_replicas", "active_replicas")
    rows = query(ctx, rep, f"SELECT {', '.join(cols)} FROM system.replicas "
                               f"WHERE database = '{ctx.ch_database}' AND table = 'audit_events'", timeout)
    if not rows:
        raise ComponentError(rep.program, f"{ctx.ch_database}.audit_events is not a replicated table here")
    return dict(zip(cols, rows[0], strict=True))


def replica(ctx: StackContext, rep: ChReplica) -> Component:
    eps = ctx.endpoints
    conf = ctx.conf_dir / rep.program
    data = ctx.data_dir / rep.data
    logs = ctx.log_dir / rep.program

    def prepare(c: StackContext) -> None:
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        extra = render("clickhouse-replication.xml.tmpl", conf / "replication.part", replica=rep.replica,
                       zk_port=eps.port("zookeeper"), tcp_port_1=eps.port(CH_REPLICAS[0].tcp),
                       tcp_port_2=eps.port(CH_REPLICAS[1].tcp)).read_text()
        values = dict(logs=logs, http_port=eps.port(rep.http), tcp_port=eps.port(rep.tcp),
                      interserver_port=eps.port(rep.interserver), data=data, conf=conf, extra=extra)
        render("clickhouse-config.xml.tmpl", conf / "config.xml", **values)
        render("clickhouse-users.xml.tmpl", conf / "users.xml", **values)

    def probe(c: StackContext) -> str:
        with socket.create_connection((HOST, eps.port(rep.tcp)), timeout=2):
            pass
        query(c, rep, "SELECT 1")
        return "SELECT 1 ok"

    def bootstrap(c: StackContext) -> str:
        for stmt in replicated_schema(c):
            query(c, rep, stmt, timeout=30)
        return f"replicated audit_events present (replica {rep.replica})"

    def health(c: StackContext) -> str:
        st = clickhouse_replica_status(c, rep)
        problems = []
        if st["is_readonly"] or st["is_session_expired"]:
            problems.append("READONLY (no ZooKeeper session)")
        if st["queue_size"] > MAX_REPLICATION_QUEUE:
            problems.append(f"replication queue {st['queue_size']} > {MAX_REPLICATION_QUEUE}")
        delay = st["absolute_delay"] if st["absolute_delay"] < 10**6 else 0  # 18.16: "now" before any part
        summary = (f"replica {rep.replica}: queue {st['queue_size']}, delay {delay} s, "
                   f"{st['active_replicas']}/{st['total_replicas']} replicas active")
        if problems:
            raise ComponentError(rep.program, f"{'; '.join(problems)} ({summary})")
        return summary

    return Component(
        name=rep.program,
        command=[str(ctx.tools.clickhouse_server), f"--config-file={conf / 'config.xml'}"],
        ports=[rep.tcp, rep.http, rep.interserver],
        prepare=prepare,
        probe=probe,
        bootstrap=bootstrap,
        health=health,
        startup_timeout=120,
        endpoint=f"clickhouse://127.0.0.1:{eps.port(rep.tcp)}/{ctx.ch_database}",
    )
