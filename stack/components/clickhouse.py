"""ClickHouse: one server (minimal profile) or two replicas of a replicated table (ha profile).

The ha replicas (``clickhouse``, ``clickhouse-2``) hold a ``ReplicatedReplacingMergeTree``
``sqlaudit.audit_events`` coordinated by ZooKeeper (:mod:`stack.components.zookeeper`).
"""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.clickhouse import check_login as ch_check_login
from clients.clickhouse import client as ch_client
from stack.components.base import SCHEMA_DIR, Component, render, sql_statements
from stack.context import StackContext
from stack.endpoints import HOST
from stack.errors import ComponentError
from stack.security import CH_SERVICE_USER, CH_SUITE_USER, ensure_tls, sha256_hex, suite_clickhouse_auth

MAX_REPLICATION_QUEUE = 50  # replica health: more queued entries than this is "behind"


def clickhouse(ctx: StackContext) -> Component:
    conf = ctx.conf_dir / "clickhouse"
    data = ctx.data_dir / "clickhouse"
    eps = ctx.endpoints

    def prepare(c: StackContext) -> None:
        data.mkdir(parents=True, exist_ok=True)
        values = dict(logs=c.log_dir, http_port=eps.port("clickhouse_http"), tcp_port=eps.port("clickhouse_tcp"),
                      interserver_port=eps.port("clickhouse_interserver"), data=data, conf=conf, extra=_tls(c))
        render("clickhouse-config.xml.tmpl", conf / "config.xml", **values)
        _render_users(c, conf, values)

    def _query(c: StackContext, q: str) -> list:
        client = ch_client(c.endpoints.clickhouse_host, c.endpoints.clickhouse_port, suite_clickhouse_auth(c),
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
        if not c.secure:
            return f"SELECT 1 ok, version {version}"
        tls = dataclasses.replace(suite_clickhouse_auth(c), secure=True, ca_file=str(ensure_tls(c.data_dir).ca_cert))
        ch_check_login(c.endpoints.clickhouse_host, c.endpoints.port("clickhouse_tcp_secure"), tls)
        return f"SELECT 1 ok, version {version}; TLS port {c.endpoints.port('clickhouse_tcp_secure')} ok"

    return Component(
        name="clickhouse",
        command=[str(ctx.tools.clickhouse_server), f"--config-file={conf / 'config.xml'}"],
        ports=["clickhouse_tcp", "clickhouse_http", "clickhouse_interserver",
               *(["clickhouse_tcp_secure"] if ctx.secure else [])],
        prepare=prepare,
        probe=probe,
        bootstrap=bootstrap,
        health=health,
        startup_timeout=60,
        endpoint=f"clickhouse://127.0.0.1:{eps.port('clickhouse_tcp')}/{ctx.ch_database}",
    )


def _tls(ctx: StackContext) -> str:
    """A secure stack's ClickHouse also speaks the native protocol over TLS (``clickhouse_tcp_secure``), with the
    stack's certificate (:func:`stack.security.ensure_tls`): the suite reads there; the service keeps the
    plain port behind its toxiproxy proxy (a proxy in front of TLS would change nothing the faults do)."""
    if not ctx.secure:
        return ""
    tls = ensure_tls(ctx.data_dir)
    return f"""    <tcp_port_secure>{ctx.endpoints.port("clickhouse_tcp_secure")}</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>{tls.server_pem}</certificateFile>
            <privateKeyFile>{tls.server_pem}</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>"""


def _render_users(ctx: StackContext, conf: Path, values: dict[str, Any]) -> None:
    """users.xml: the password-less ``default`` user, or on a secure stack only the service's and the suite's
    users with their password hashes (:mod:`stack.security`)."""
    if not ctx.secure:
        render("clickhouse-users.xml.tmpl", conf / "users.xml", **values)
        return
    render("clickhouse-users-secure.xml.tmpl", conf / "users.xml", service_user=CH_SERVICE_USER,
           service_hash=sha256_hex(ctx.secrets.clickhouse_service_password), suite_user=CH_SUITE_USER,
           suite_hash=sha256_hex(ctx.secrets.clickhouse_suite_password))


@dataclass(frozen=True)
class ChReplica:
    """One ClickHouse server of the ha profile: its program, replica name, shard and port names."""

    index: int  # the ``replica`` argument of the ClickHouse faults
    program: str
    replica: str
    shard: str
    tcp: str
    http: str
    interserver: str
    data: str


CH_REPLICAS = (
    ChReplica(0, "clickhouse", "ch1", "01", "clickhouse_tcp", "clickhouse_http", "clickhouse_interserver",
              "clickhouse"),
    ChReplica(1, "clickhouse-2", "ch2", "01", "clickhouse_tcp_2", "clickhouse_http_2", "clickhouse_interserver_2",
              "clickhouse-2"),
    ChReplica(2, "clickhouse-3", "ch3", "02", "clickhouse_tcp_3", "clickhouse_http_3", "clickhouse_interserver_3",
              "clickhouse-3"),
    ChReplica(3, "clickhouse-4", "ch4", "02", "clickhouse_tcp_4", "clickhouse_http_4", "clickhouse_interserver_4",
              "clickhouse-4"),
)
"""Two shards (``01``: ch1, ch2; ``02``: ch3, ch4) of two replicas each."""

LOCAL_TABLE = "audit_events"
DISTRIBUTED_TABLE = "audit_events_all"
"""The ha profile's events are sharded by event id; writes and reads go through this table."""


def query(ctx: StackContext, rep: ChReplica, q: str, timeout: float = 10.0) -> list[Any]:
    client = ch_client(HOST, ctx.endpoints.port(rep.tcp), suite_clickhouse_auth(ctx), connect_timeout=3,
                       send_receive_timeout=timeout)
    try:
        return list(client.execute(q))
    finally:
        client.disconnect()


def replicated_statements(script: str, where: str) -> list[str]:
    """The statements of ``script`` (sqlaudit/schema/clickhouse.sql, read from ``where``) with its engine made
    replicated: one source of the columns for the local ha stack and the cluster's bootstrap Job. The server's
    ``{shard}`` and ``{replica}`` macros name the table's ZooKeeper path and the replica."""
    engine = "ENGINE = ReplacingMergeTree(stored_at_ms)"
    if engine not in script:
        raise ComponentError("clickhouse", f"{where}: expected {engine!r} to replicate")
    replicated = ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/sqlaudit/audit_events', "
                  "'{replica}', stored_at_ms)")
    return sql_statements(script.replace(engine, replicated))


def replicated_schema(ctx: StackContext) -> list[str]:
    """:func:`replicated_statements` of ``sqlaudit/schema/clickhouse.sql``, and the ``Distributed`` table over both
    shards, sharded by event id (a redelivered event lands on the shard that already holds it, where
    ReplacingMergeTree collapses the copies)."""
    path = SCHEMA_DIR / "clickhouse.sql"
    db = ctx.ch_database
    distributed = (f"CREATE TABLE IF NOT EXISTS {db}.{DISTRIBUTED_TABLE} AS {db}.{LOCAL_TABLE} "
                   f"ENGINE = Distributed(sqlaudit, {db}, {LOCAL_TABLE}, cityHash64(toString(event_id)))")
    return [*replicated_statements(path.read_text(), str(path)), distributed]


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
                       shard=rep.shard, zk_port=eps.port("zookeeper"),
                       **{f"tcp_port_{r.index + 1}": eps.port(r.tcp) for r in CH_REPLICAS}).read_text()
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
        return f"replicated {LOCAL_TABLE} and {DISTRIBUTED_TABLE} present (shard {rep.shard} replica {rep.replica})"

    def health(c: StackContext) -> str:
        st = clickhouse_replica_status(c, rep)
        problems = []
        if st["is_readonly"] or st["is_session_expired"]:
            problems.append("READONLY (no ZooKeeper session)")
        if st["queue_size"] > MAX_REPLICATION_QUEUE:
            problems.append(f"replication queue {st['queue_size']} > {MAX_REPLICATION_QUEUE}")
        delay = st["absolute_delay"] if st["absolute_delay"] < 10**6 else 0  # 18.16: "now" before any part
        summary = (f"shard {rep.shard} replica {rep.replica}: queue {st['queue_size']}, delay {delay} s, "
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
