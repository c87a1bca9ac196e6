"""The ``ha`` profile: the production topology's redundancy on loopback.

* PostgreSQL: two members managed by **Patroni** (``postgres`` = member ``pg1``,
  ``postgres-2`` = ``pg2``) with a single-node **etcd** as DCS (Patroni's ``etcd3``
  section: etcd 3.4's v3 gRPC gateway; the v2 API is not needed). Synchronous
  replication is on by default (``RESILIENCE_PATRONI_SYNCHRONOUS_MODE=off`` at ``up``,
  or :func:`set_synchronous_mode` at run time). ``primary_start_timeout: 0``: a
  crashed primary is failed over to the standby instead of being restarted in place.
* ClickHouse: two replicas (``clickhouse``, ``clickhouse-2``) of a
  ``ReplicatedReplacingMergeTree`` ``sqlaudit.audit_events``, coordinated by a
  standalone **ZooKeeper** (``zookeeper``).
* Kafka: three combined broker+controller KRaft nodes (``kafka``, ``kafka-2``,
  ``kafka-3``); topics with replication factor 3, ``min.insync.replicas=2``,
  ``unclean.leader.election.enable=false``.

The audit service reaches every member through its own toxiproxy proxy
(``postgres``/``postgres_2``, ``clickhouse``/``clickhouse_2``,
``kafka``/``kafka_2``/``kafka_3``) with a multi-host PostgreSQL conninfo
(``target_session_attrs=read-write``), clickhouse-driver ``alt_hosts`` and all
three brokers as bootstrap. The helpers at the end (leader, cluster, members)
are what the fault backends and the tests use.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from resilience.stack import components as base
from resilience.stack.components import Component, ensure_topics, render
from resilience.stack.context import StackContext
from resilience.stack.endpoints import HOST
from resilience.stack.errors import ComponentError

__all__ = ["BROKERS", "CH_REPLICAS", "PG_MEMBERS", "Broker", "ChReplica", "PgMember", "clickhouse_replica_status",
           "ha_components", "kafka_bootstrap_direct", "patroni_cluster", "patroni_leader", "postmaster_pid",
           "set_synchronous_mode", "synchronous_mode_default"]

TTL_S = 10
LOOP_WAIT_S = 2
RETRY_TIMEOUT_S = 4  # Patroni requires loop_wait + 2 * retry_timeout <= ttl
MAX_REPLICATION_QUEUE = 50  # ClickHouse replica health: more queued entries than this is "behind"
HTTP_TIMEOUT = (2.0, 5.0)


@dataclass(frozen=True)
class PgMember:
    """One Patroni member: its supervisor program, Patroni name and port names."""

    index: int
    program: str
    name: str
    port: str
    api_port: str


@dataclass(frozen=True)
class ChReplica:
    index: int
    program: str
    replica: str
    tcp: str
    http: str
    interserver: str
    data: str


@dataclass(frozen=True)
class Broker:
    index: int  # the ``broker`` argument of the kafka_broker fault
    program: str
    node_id: int
    port: str
    controller: str
    service: str
    proxy: str
    data: str


PG_MEMBERS = (PgMember(0, "postgres", "pg1", "postgres", "patroni_api"),
              PgMember(1, "postgres-2", "pg2", "postgres_2", "patroni_api_2"))
CH_REPLICAS = (ChReplica(0, "clickhouse", "ch1", "clickhouse_tcp", "clickhouse_http", "clickhouse_interserver",
                         "clickhouse"),
               ChReplica(1, "clickhouse-2", "ch2", "clickhouse_tcp_2", "clickhouse_http_2",
                         "clickhouse_interserver_2", "clickhouse-2"))
BROKERS = (Broker(0, "kafka", 1, "kafka", "kafka_controller", "kafka_service", "proxy_kafka", "kafka"),
           Broker(1, "kafka-2", 2, "kafka_2", "kafka_controller_2", "kafka_service_2", "proxy_kafka_2", "kafka-2"),
           Broker(2, "kafka-3", 3, "kafka_3", "kafka_controller_3", "kafka_service_3", "proxy_kafka_3", "kafka-3"))


def synchronous_mode_default() -> bool:
    """``RESILIENCE_PATRONI_SYNCHRONOUS_MODE`` (default on): the value a new cluster is bootstrapped with."""
    value = os.environ.get("RESILIENCE_PATRONI_SYNCHRONOUS_MODE", "on").strip().lower()
    return value not in ("0", "off", "false", "no")


def kafka_bootstrap_direct(ctx: StackContext) -> str:
    """Every broker's DIRECT listener, comma separated (load generator, probes)."""
    return ",".join(f"{HOST}:{ctx.endpoints.port(b.port)}" for b in BROKERS)


def _service_environment(ctx: StackContext) -> dict[str, str]:
    """What the audit-service replicas need to reach every member through its proxy."""
    eps = ctx.endpoints
    kafka = ",".join(f"{HOST}:{eps.port(b.proxy)}" for b in BROKERS)
    pg_hosts = ",".join(f"{HOST}:{eps.port(p)}" for p in ("proxy_postgres", "proxy_postgres_2"))
    return {
        "SQLAUDIT_KAFKA_BOOTSTRAP": kafka,
        "SQLAUDIT_PG_DSN": f"postgresql://{ctx.pg_user}@{pg_hosts}/{ctx.pg_database}?target_session_attrs=read-write",
        "SQLAUDIT_CH_ALT_HOSTS": f"{HOST}:{eps.port('proxy_clickhouse_2')}",
    }


# ---------------------------------------------------------------------------
# etcd (Patroni's DCS)
# ---------------------------------------------------------------------------
def etcd(ctx: StackContext) -> Component:
    data = ctx.data_dir / "etcd"
    client = f"http://{HOST}:{ctx.endpoints.port('etcd_client')}"
    peer = f"http://{HOST}:{ctx.endpoints.port('etcd_peer')}"

    def prepare(c: StackContext) -> None:
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)

    def health(c: StackContext) -> str:
        resp = requests.get(f"{client}/health", timeout=HTTP_TIMEOUT)
        if resp.status_code != 200 or resp.json().get("health") != "true":
            raise ComponentError("etcd", f"{client}/health: HTTP {resp.status_code} {resp.text.strip()[:200]}")
        version = requests.get(f"{client}/version", timeout=HTTP_TIMEOUT).json().get("etcdserver")
        return f"healthy, version {version}"

    return Component(
        name="etcd",
        command=[ctx.tools.etcd, "--name", "etcd0", "--data-dir", str(data),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"etcd0={peer}", "--initial-cluster-state", "new",
                 "--initial-cluster-token", f"sqlaudit-{ctx.endpoints.port_base}",
                 "--quota-backend-bytes", str(256 * 1024 * 1024), "--log-level", "warn"],
        ports=["etcd_client", "etcd_peer"],
        prepare=prepare,
        probe=health,
        health=health,
        startup_timeout=30,
        metrics=f"{HOST}:{ctx.endpoints.port('etcd_client')}",
        endpoint=client,
    )


# ---------------------------------------------------------------------------
# PostgreSQL under Patroni
# ---------------------------------------------------------------------------
def _member_dir(ctx: StackContext, member: PgMember) -> Path:
    return ctx.data_dir / "postgres" / member.name


def _pgdata(ctx: StackContext, member: PgMember) -> Path:
    return _member_dir(ctx, member) / "pgdata"


def _sockdir(ctx: StackContext, member: PgMember) -> Path:
    return _member_dir(ctx, member) / "run"


def _api(ctx: StackContext, member: PgMember) -> str:
    return f"http://{HOST}:{ctx.endpoints.port(member.api_port)}"


def _patroni_config(ctx: StackContext, member: PgMember) -> dict[str, Any]:
    eps = ctx.endpoints
    password = ctx.secrets.postgres_password
    port = eps.port(member.port)
    api = eps.port(member.api_port)
    sync = synchronous_mode_default()
    return {
        "scope": f"sqlaudit-{eps.port_base}",
        "namespace": "/sql-audit-resilience/",
        "name": member.name,
        "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
        "restapi": {"listen": f"{HOST}:{api}", "connect_address": f"{HOST}:{api}"},
        "etcd3": {"hosts": f"{HOST}:{eps.port('etcd_client')}"},
        "bootstrap": {
            "dcs": {
                "ttl": TTL_S, "loop_wait": LOOP_WAIT_S, "retry_timeout": RETRY_TIMEOUT_S,
                "maximum_lag_on_failover": 1024 * 1024,
                "synchronous_mode": sync,
                "failsafe_mode": True,
                "primary_start_timeout": 0,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {"wal_level": "replica", "hot_standby": "on", "max_wal_senders": 5,
                                   "max_replication_slots": 5, "wal_log_hints": "on", "max_connections": 100,
                                   "synchronous_commit": "on", "wal_keep_size": "128MB"},
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, {"auth-local": "trust"},
                       {"auth-host": "scram-sha-256"}],
        },
        "postgresql": {
            "listen": f"{HOST}:{port}",
            "connect_address": f"{HOST}:{port}",
            "data_dir": str(_pgdata(ctx, member)),
            "bin_dir": str(ctx.tools.pg_bindir),
            "pgpass": str(_member_dir(ctx, member) / ".pgpass"),
            "parameters": {"unix_socket_directories": str(_sockdir(ctx, member)), "shared_buffers": "128MB",
                           "fsync": "on"},
            "pg_hba": ["local all all trust",
                       f"host replication replicator {HOST}/32 scram-sha-256",
                       f"host all all {HOST}/32 scram-sha-256"],
            # One generated password per stack (secrets.json) for the superuser, replication and
            # audit roles: everything listens on loopback only.
            "authentication": {
                "superuser": {"username": "postgres", "password": password},
                "replication": {"username": "replicator", "password": password},
                "rewind": {"username": "postgres", "password": password},
            },
        },
        "watchdog": {"mode": "off"},
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def patroni_cluster(ctx: StackContext) -> dict[str, Any]:
    """Patroni's ``GET /cluster`` from the first member that answers.

    Raises :class:`ComponentError` when no member's REST API answers.
    """
    errors = []
    for member in PG_MEMBERS:
        url = f"{_api(ctx, member)}/cluster"
        try:
            resp = requests.get(url, timeout=HTTP_TIMEOUT)
            resp.raise_for_status()
            return dict(resp.json())
        except (requests.RequestException, ValueError) as exc:
            errors.append(f"{url}: {type(exc).__name__}")
    raise ComponentError("patroni", "no member's REST API answers: " + "; ".join(errors))


def member_by_name(name: str) -> PgMember:
    """The :class:`PgMember` whose Patroni name is ``name``."""
    for member in PG_MEMBERS:
        if member.name == name:
            return member
    raise KeyError(f"no Patroni member {name!r}; members: {', '.join(m.name for m in PG_MEMBERS)}")


def patroni_leader(ctx: StackContext) -> PgMember | None:
    """The member that holds the leader lock and runs, or ``None`` (no leader right now)."""
    for m in patroni_cluster(ctx).get("members", []):
        if m.get("role") in ("leader", "master", "primary") and m.get("state") == "running":
            return member_by_name(str(m["name"]))
    return None


def set_synchronous_mode(ctx: StackContext, enabled: bool) -> None:
    """Switch Patroni's ``synchronous_mode`` at run time (``PATCH /config``)."""
    errors = []
    for member in PG_MEMBERS:
        try:
            resp = requests.patch(f"{_api(ctx, member)}/config", json={"synchronous_mode": enabled},
                                  timeout=HTTP_TIMEOUT)
            resp.raise_for_status()
            return
        except requests.RequestException as exc:
            errors.append(f"{member.name}: {exc}")
    raise ComponentError("patroni", "PATCH /config failed on every member: " + "; ".join(errors))


def postmaster_pid(ctx: StackContext, member: PgMember) -> int | None:
    """Pid of ``member``'s postmaster from ``postmaster.pid``, if that process is alive and is it."""
    import psutil

    try:
        lines = (_pgdata(ctx, member) / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        proc = psutil.Process(pid)
        if str(_pgdata(ctx, member)) in " ".join(proc.cmdline()):
            return pid
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
    return None


def describe_members(cluster: dict[str, Any]) -> str:
    parts = []
    for m in sorted(cluster.get("members", []), key=lambda m: str(m.get("name"))):
        lag = m.get("lag")
        parts.append(f"{m.get('name')} {m.get('role')} {m.get('state')}"
                     + (f" lag {lag}" if lag not in (None, 0, "0") else "")
                     + (f" tl {m['timeline']}" if m.get("timeline") is not None else ""))
    return ", ".join(parts)


def patroni_cluster_problems(cluster: dict[str, Any], sync: bool) -> list[str]:
    """What keeps the Patroni cluster from full redundancy (empty: leader + streaming replica(s))."""
    members = cluster.get("members", [])
    problems = []
    leaders = [m for m in members if m.get("role") in ("leader", "master", "primary")]
    if len(leaders) != 1 or leaders[0].get("state") != "running":
        problems.append(f"{len(leaders)} leader(s) running")
    replicas = [m for m in members if m not in leaders]
    if len(replicas) != len(PG_MEMBERS) - 1:
        problems.append(f"{len(replicas)} of {len(PG_MEMBERS) - 1} replica(s) registered")
    for m in replicas:
        if m.get("state") not in ("streaming", "running"):
            problems.append(f"{m.get('name')} {m.get('state')}")
    if sync and not any(m.get("role") == "sync_standby" for m in replicas):
        problems.append("synchronous_mode on but no sync_standby")
    return problems


def _patroni_member(ctx: StackContext, member: PgMember) -> Component:
    mdir = _member_dir(ctx, member)
    conf = ctx.conf_dir / "patroni" / f"{member.name}.yml"
    api = _api(ctx, member)

    def prepare(c: StackContext) -> None:
        import yaml

        for d in (mdir.parent, mdir, _sockdir(c, member)):
            d.mkdir(parents=True, exist_ok=True)
            base._chown_postgres(d)
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.parent.chmod(0o755)
        conf.write_text("# Generated by resilience.stack (ha profile); do not edit.\n"
                        + yaml.safe_dump(_patroni_config(c, member), sort_keys=False))
        base._chown_postgres(conf)
        conf.chmod(0o600)  # holds the stack's password

    def probe(c: StackContext) -> str:
        resp = requests.get(f"{api}/patroni", timeout=HTTP_TIMEOUT)
        state = resp.json().get("state")
        if state != "running":
            raise ComponentError(member.program, f"Patroni member {member.name}: postgres {state}")
        return f"{member.name} running"

    def bootstrap(c: StackContext) -> str:

        leader = patroni_leader(c)
        if leader is None:
            raise ComponentError(member.program, "no Patroni leader yet")
        base.ensure_audit_database(c, {"host": str(_sockdir(c, leader)), "port": c.endpoints.port(leader.port)})
        return f"role, database and schema present (leader {leader.name})"

    def health(c: StackContext) -> str:
        me = requests.get(f"{api}/patroni", timeout=HTTP_TIMEOUT).json()
        cluster = patroni_cluster(c)
        sync = bool(requests.get(f"{api}/config", timeout=HTTP_TIMEOUT).json().get("synchronous_mode"))
        problems = patroni_cluster_problems(cluster, sync)
        if me.get("state") != "running":
            problems.insert(0, f"{member.name}: postgres {me.get('state')}")
        summary = f"{describe_members(cluster)}; synchronous_mode {'on' if sync else 'off'}"
        if problems:
            raise ComponentError(member.program, f"{'; '.join(problems)} ({summary})")
        return f"{member.name} is {me.get('role')}; {summary}"

    def pids(c: StackContext) -> list[int]:
        pid = postmaster_pid(c, member)
        return [pid] if pid else []

    port = ctx.endpoints.port(member.port)
    return Component(
        name=member.program,
        command=[str(ctx.tools.patroni), str(conf)],
        ports=[member.port, member.api_port],
        user="postgres",
        environment={"PATH": f"{ctx.tools.pg_bindir}:/usr/bin:/bin", "HOME": str(mdir)},
        prepare=prepare,
        probe=probe,
        bootstrap=bootstrap if member.index == 0 else None,
        health=health,
        stopsignal="TERM",  # Patroni stops PostgreSQL (fast) and exits
        stopwaitsecs=40,
        startup_timeout=150,
        metrics=f"{HOST}:{ctx.endpoints.port(member.api_port)}",
        metrics_labels={"member": member.name},
        endpoint=f"postgresql://{ctx.pg_user}@127.0.0.1:{port}/{ctx.pg_database} (patroni {api})",
        pids=pids,
    )


# ---------------------------------------------------------------------------
# ZooKeeper and the ClickHouse replicas
# ---------------------------------------------------------------------------
def four_letter(port: int, word: str, timeout: float = 3.0) -> str:
    """A ZooKeeper four-letter command's answer (``ruok``, ``srvr``, ``mntr``)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(word.encode())
        chunks = []
        while True:
            data = sock.recv(4096)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def zookeeper(ctx: StackContext) -> Component:
    conf = ctx.conf_dir / "zookeeper" / "zoo.cfg"
    data = ctx.data_dir / "zookeeper"
    port = ctx.endpoints.port("zookeeper")

    def prepare(c: StackContext) -> None:
        data.mkdir(parents=True, exist_ok=True)
        render("zookeeper.cfg.tmpl", conf, data=data, port=port)

    def probe(c: StackContext) -> str:
        if four_letter(port, "ruok") != "imok":
            raise ComponentError("zookeeper", "ruok not answered with imok")
        return "imok"

    def health(c: StackContext) -> str:
        srvr = dict(line.split(": ", 1) for line in four_letter(port, "srvr").splitlines() if ": " in line)
        if "Mode" not in srvr:
            raise ComponentError("zookeeper", f"srvr: no Mode in {srvr}")
        return f"mode {srvr['Mode']}, {srvr.get('Connections', '?')} connections, {srvr.get('Node count', '?')} znodes"

    heap = os.environ.get("RESILIENCE_ZOOKEEPER_HEAP", "128m")
    return Component(
        name="zookeeper",
        command=[ctx.tools.java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                 "-Dzookeeper.admin.enableServer=false", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                 "-cp", ctx.tools.zookeeper_classpath, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                 str(conf)],
        ports=["zookeeper"],
        prepare=prepare,
        probe=probe,
        health=health,
        startup_timeout=60,
        endpoint=f"zookeeper://{HOST}:{port}",
    )


def _ch_query(ctx: StackContext, rep: ChReplica, q: str, timeout: float = 10.0) -> list[Any]:
    from clickhouse_driver import Client

    client = Client(host=HOST, port=ctx.endpoints.port(rep.tcp), connect_timeout=3, send_receive_timeout=timeout)
    try:
        return list(client.execute(q))
    finally:
        client.disconnect()


def replicated_schema(ctx: StackContext) -> list[str]:
    """``sqlaudit/schema/clickhouse.sql`` with the engine made replicated (one source of the columns)."""
    script = (base.SCHEMA_DIR / "clickhouse.sql").read_text()
    engine = "ENGINE = ReplacingMergeTree(stored_at_ms)"
    if engine not in script:
        raise ComponentError("clickhouse", f"{base.SCHEMA_DIR / 'clickhouse.sql'}: expected {engine!r} to replicate")
    replicated = ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/sqlaudit/audit_events', "
                  "'{replica}', stored_at_ms)")
    return base._statements(script.replace(engine, replicated))


def clickhouse_replica_status(ctx: StackContext, rep: ChReplica, timeout: float = 10.0) -> dict[str, Any]:
    """``system.replicas`` of ``sqlaudit.audit_events`` on replica ``rep`` (raises if unreachable)."""
    cols = ("is_readonly", "is_session_expired", "queue_size", "inserts_in_queue", "absolute_delay",
            "total_replicas", "active_replicas")
    rows = _ch_query(ctx, rep, f"SELECT {', '.join(cols)} FROM system.replicas "
                               f"WHERE database = '{ctx.ch_database}' AND table = 'audit_events'", timeout)
    if not rows:
        raise ComponentError(rep.program, f"{ctx.ch_database}.audit_events is not a replicated table here")
    return dict(zip(cols, rows[0], strict=True))


def _clickhouse_replica(ctx: StackContext, rep: ChReplica) -> Component:
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
        _ch_query(c, rep, "SELECT 1")
        return "SELECT 1 ok"

    def bootstrap(c: StackContext) -> str:
        for stmt in replicated_schema(c):
            _ch_query(c, rep, stmt, timeout=30)
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


# ---------------------------------------------------------------------------
# Kafka: three KRaft nodes
# ---------------------------------------------------------------------------
def _kafka_admin(ctx: StackContext, broker: Broker) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=f"{HOST}:{ctx.endpoints.port(broker.port)}",
                            client_id="resilience-stack", request_timeout_ms=5000, bootstrap_timeout_ms=3000)


def _live_brokers(cluster: dict[str, Any]) -> list[int]:
    """Ids of the registered, unfenced brokers in a DescribeCluster answer."""
    return sorted(int(b.get("broker_id", b.get("node_id", -1))) for b in cluster.get("brokers", [])
                  if not b.get("is_fenced"))


def _kafka_node(ctx: StackContext, broker: Broker) -> Component:
    eps = ctx.endpoints
    conf = ctx.conf_dir / broker.program
    data = ctx.data_dir / broker.data
    classpath = f"{ctx.tools.kafka_libs}/*"
    cluster_id_file = ctx.data_dir / "kafka-cluster-id"

    def prepare(c: StackContext) -> None:
        voters = ",".join(f"{b.node_id}@{HOST}:{eps.port(b.controller)}" for b in BROKERS)
        render("kafka-ha-server.properties.tmpl", conf / "server.properties", node_id=broker.node_id,
               voters=voters, controller_port=eps.port(broker.controller), kafka_port=eps.port(broker.port),
               service_port=eps.port(broker.service), proxy_port=eps.port(broker.proxy), data=data)
        render("kafka-log4j2.properties.tmpl", conf / "log4j2.properties")
        if (data / "meta.properties").exists():
            return
        if not cluster_id_file.exists():  # one cluster id for the three nodes
            cluster_id_file.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
        base._run([c.tools.java, "-Xmx256m", "-cp", classpath, "kafka.tools.StorageTool", "format",
                   "-t", cluster_id_file.read_text().strip(), "-c", str(conf / "server.properties")],
                  broker.program, c)

    def probe(c: StackContext) -> str:
        admin = _kafka_admin(c, broker)
        try:
            admin.describe_cluster()
        finally:
            admin.close()
        return "cluster metadata ok"

    def bootstrap(c: StackContext) -> str:
        admin = _kafka_admin(c, broker)
        try:
            brokers = _live_brokers(admin.describe_cluster())
            if len(brokers) < len(BROKERS):
                raise ComponentError(broker.program, f"{len(brokers)} of {len(BROKERS)} brokers registered")
            ensure_topics(admin, c, replication_factor=len(BROKERS), timeout_ms=15000,
                          configs={"min.insync.replicas": "2", "unclean.leader.election.enable": "false"})
        finally:
            admin.close()
        return f"topics {c.topic}, {c.dlq_topic} present (RF {len(BROKERS)}, min.insync.replicas 2)"

    def health(c: StackContext) -> str:
        admin = _kafka_admin(c, broker)
        try:
            cluster = admin.describe_cluster()
            meta = admin.describe_topics([c.topic])
        finally:
            admin.close()
        ids = _live_brokers(cluster)
        topic = meta[0]
        parts = topic["partitions"]
        problems = []
        if len(ids) != len(BROKERS):
            problems.append(f"brokers {ids}, expected {len(BROKERS)}")
        if broker.node_id not in ids:
            problems.append(f"node {broker.node_id} not registered")
        if topic.get("error_code") or not parts:
            problems.append(f"topic {c.topic}: error {topic.get('error_code')}, {len(parts)} partitions")
        leaderless = [p.get("partition_index") for p in parts if p.get("leader_id", -1) < 0]
        short = {p.get("partition_index"): len(p.get("isr_nodes", [])) for p in parts
                 if len(p.get("isr_nodes", [])) < len(BROKERS)}
        if leaderless:
            problems.append(f"partitions without leader {leaderless}")
        if short:
            problems.append(f"ISR below {len(BROKERS)}: {short}")
        led = sum(1 for p in parts if p.get("leader_id") == broker.node_id)
        if problems:
            raise ComponentError(broker.program, "; ".join(problems))
        return (f"node {broker.node_id}: {len(ids)} brokers; {c.topic} {len(parts)} partitions, ISR "
                f"{len(BROKERS)}/{len(BROKERS)} everywhere, leads {led}")

    heap = os.environ.get("RESILIENCE_KAFKA_HEAP", "384m")
    return Component(
        name=broker.program,
        command=[ctx.tools.java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                 "-XX:CICompilerCount=2", "-Djava.awt.headless=true",
                 f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
                 "-cp", classpath, "kafka.Kafka", str(conf / "server.properties")],
        ports=[broker.port, broker.controller, broker.service],
        prepare=prepare,
        probe=probe,
        bootstrap=bootstrap if broker.index == 0 else None,
        health=health,
        startup_timeout=180,
        endpoint=f"kafka://{HOST}:{eps.port(broker.port)} (service via {HOST}:{eps.port(broker.proxy)})",
    )


# ---------------------------------------------------------------------------
# The profile
# ---------------------------------------------------------------------------
def ha_components(ctx: StackContext) -> list[Component]:
    """All components of the ``ha`` profile in start order (Prometheus last)."""
    from resilience.stack.audit_service import audit_service
    from resilience.stack.lag_exporter import lag_exporter

    comps: list[Component] = [base.toxiproxy(ctx), etcd(ctx), zookeeper(ctx)]
    comps.extend(_patroni_member(ctx, m) for m in PG_MEMBERS)
    comps.extend(_clickhouse_replica(ctx, r) for r in CH_REPLICAS)
    comps.extend(_kafka_node(ctx, b) for b in BROKERS)
    # Stack-level overrides in ctx.extra still win over the HA addresses.
    service_ctx = dataclasses.replace(ctx, extra={**_service_environment(ctx), **ctx.extra})
    comps.extend(audit_service(service_ctx))
    for exporter in lag_exporter(ctx):  # bootstrap from every broker, so one broker down does not blind it
        cmd = list(exporter.command)
        cmd[cmd.index("--bootstrap") + 1] = kafka_bootstrap_direct(ctx)
        comps.append(dataclasses.replace(exporter, command=cmd))
    comps.append(base.prometheus(ctx, comps))
    return comps


def describe(ctx: StackContext) -> dict[str, Any]:
    """Addresses of the HA members (for ``status --json`` and docs)."""
    eps = ctx.endpoints
    return {
        "patroni": {m.name: _api(ctx, m) for m in PG_MEMBERS},
        "clickhouse": {r.replica: eps.port(r.tcp) for r in CH_REPLICAS},
        "kafka": kafka_bootstrap_direct(ctx),
        "service": json.loads(json.dumps(_service_environment(ctx))),
    }
