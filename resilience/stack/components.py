"""The components of a local stack: what runs, how it is configured and checked.

Each :class:`Component` says how to prepare its data (once), the command the
supervisor runs, the ports it binds, where Prometheus scrapes it, and three
checks used by ``up`` and ``status``:

``probe``     the process answers at all (used while starting);
``bootstrap`` idempotent set-up once it answers (topics, roles, schemas);
``health``    the real health check reported by ``status``.

A profile is a list of components (:func:`components_for`). The audit-service
replicas and the consumer-lag exporter live in their own modules.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import requests

from resilience.paths import DEPLOY_LOCAL, REPO_ROOT
from resilience.stack.context import StackContext
from resilience.stack.errors import ComponentError

TEMPLATES = DEPLOY_LOCAL / "templates"
SCHEMA_DIR = REPO_ROOT / "sqlaudit" / "schema"

Check = Callable[[StackContext], str]
"""A check returns a one-line description of what it verified, or raises."""


@dataclass
class Component:
    """One supervised process of the stack."""

    name: str
    command: list[str]
    ports: list[str]
    probe: Check
    health: Check
    bootstrap: Check | None = None
    prepare: Callable[[StackContext], None] | None = None
    user: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    stopsignal: str = "TERM"
    stopwaitsecs: int = 30
    startup_timeout: float = 60.0
    metrics: str | None = None  # "host:port" Prometheus scrapes, if any
    metrics_labels: dict[str, str] = field(default_factory=dict)
    endpoint: str = ""  # shown by status
    group: str = "infra"  # supervisor group; replicas use their own
    # Pids the component owns outside supervisord's process tree (a postmaster that Patroni
    # started in its own session); ``down`` stops them too.
    pids: Callable[[StackContext], list[int]] | None = None


def render(template: str, dest: Path, **values: object) -> Path:
    """Render ``deploy/local/templates/<template>`` with ``string.Template`` into ``dest``."""
    text = Template((TEMPLATES / template).read_text()).substitute({k: str(v) for k, v in values.items()})
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    return dest


def _run(cmd: list[str], what: str, ctx: StackContext) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ComponentError(what, f"{' '.join(cmd[:3])}... failed: {(proc.stderr or proc.stdout)[-800:]}")


def _chown_postgres(path: Path) -> None:
    shutil.chown(path, "postgres", "postgres")


# ---------------------------------------------------------------------------
# toxiproxy
# ---------------------------------------------------------------------------
def toxiproxy(ctx: StackContext) -> Component:
    def prepare(c: StackContext) -> None:
        proxies = [
            {"name": name, "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{up}", "enabled": True}
            for name, (listen, up) in c.endpoints.proxies(c.profile).items()
        ]
        path = c.conf_dir / "toxiproxy.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(proxies, indent=2))

    def probe(c: StackContext) -> str:
        requests.get(f"{c.endpoints.toxiproxy_url}/version", timeout=2).raise_for_status()
        return "api answers"

    def health(c: StackContext) -> str:
        resp = requests.get(f"{c.endpoints.toxiproxy_url}/proxies", timeout=2)
        resp.raise_for_status()
        proxies = resp.json()
        want = set(c.endpoints.proxies(c.profile))
        missing = want - set(proxies)
        if missing:
            raise ComponentError("toxiproxy", f"proxies missing: {sorted(missing)}")
        disabled = sorted(n for n in want if not proxies[n]["enabled"])
        toxics = sorted(f"{n}:{t['name']}" for n in want for t in proxies[n].get("toxics", []))
        notes = []
        if disabled:
            notes.append(f"DISABLED {disabled}")
        if toxics:
            notes.append(f"toxics {toxics}")
        return f"{len(want)} proxies" + (f" ({'; '.join(notes)})" if notes else ", all enabled, no toxics")

    port = ctx.endpoints.port("toxiproxy_api")
    return Component(
        name="toxiproxy",
        command=[
            str(ctx.tools.toxiproxy),
            "-host", "127.0.0.1", "-port", str(port),
            "-config", str(ctx.conf_dir / "toxiproxy.json"),
            "-proxy-metrics", "-runtime-metrics",
        ],
        ports=["toxiproxy_api", *(f"proxy_{name}" for name in ctx.endpoints.proxies(ctx.profile))],
        prepare=prepare,
        probe=probe,
        health=health,
        startup_timeout=20,
        metrics=f"127.0.0.1:{port}",
        endpoint=ctx.endpoints.toxiproxy_url,
    )


# ---------------------------------------------------------------------------
# PostgreSQL (single server; the HA profile swaps in Patroni)
# ---------------------------------------------------------------------------
def postgres(ctx: StackContext) -> Component:
    pgdata = ctx.data_dir / "postgres" / "pgdata"
    sockdir = ctx.data_dir / "postgres" / "run"
    bindir = ctx.tools.pg_bindir

    def prepare(c: StackContext) -> None:
        root = pgdata.parent
        root.mkdir(parents=True, exist_ok=True)
        sockdir.mkdir(parents=True, exist_ok=True)
        for p in (root, sockdir):
            _chown_postgres(p)
        if (pgdata / "PG_VERSION").exists():
            return
        pwfile = root / ".initpw"
        pwfile.write_text(c.secrets.postgres_password + "\n")
        _chown_postgres(pwfile)
        pwfile.chmod(0o600)
        try:
            _run(
                ["runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D", str(pgdata),
                 "-U", "postgres", f"--pwfile={pwfile}", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
                "postgres", c,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _connect(c: StackContext, **kw: object):
        import psycopg

        return psycopg.connect(connect_timeout=3, autocommit=True, **kw)  # type: ignore[arg-type]

    def probe(c: StackContext) -> str:
        with _connect(c, host=str(sockdir), port=c.endpoints.port("postgres"), user="postgres",
                      dbname="postgres") as conn:
            conn.execute("SELECT 1")
        return "accepts connections"

    def bootstrap(c: StackContext) -> str:
        ensure_audit_database(c, {"host": str(sockdir), "port": c.endpoints.port("postgres")})
        return "role, database and schema present"

    def health(c: StackContext) -> str:
        with _connect(c, **c.postgres_kwargs()) as conn:
            conn.execute("SELECT 1")
            in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        return "SELECT 1 ok, " + ("replica" if in_recovery else "primary")

    port = ctx.endpoints.port("postgres")
    return Component(
        name="postgres",
        command=[
            str(bindir / "postgres"), "-D", str(pgdata),
            "-c", f"port={port}", "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={sockdir}",
            "-c", "shared_buffers=128MB", "-c", "max_connections=100",
            "-c", "fsync=on", "-c", "synchronous_commit=on",
        ],
        ports=["postgres"],
        user="postgres",
        prepare=prepare,
        probe=probe,
        bootstrap=bootstrap,
        health=health,
        stopsignal="INT",  # fast shutdown
        startup_timeout=60,
        endpoint=f"postgresql://{ctx.pg_user}@127.0.0.1:{port}/{ctx.pg_database}",
    )


# ---------------------------------------------------------------------------
# ClickHouse
# ---------------------------------------------------------------------------
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
        for stmt in _statements((SCHEMA_DIR / "clickhouse.sql").read_text()):
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


def ensure_audit_database(ctx: StackContext, superuser: dict[str, object]) -> None:
    """Create the audit role, database and ``violations`` schema if missing (idempotent).

    ``superuser`` gives ``host`` (the unix socket directory) and ``port`` of the primary, where
    the ``postgres`` superuser connects without a password.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(**superuser, user="postgres", dbname="postgres", connect_timeout=3,  # type: ignore[arg-type]
                         autocommit=True) as conn:
        role = ctx.pg_user
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(ctx.secrets.postgres_password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (ctx.pg_database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(ctx.pg_database), sql.Identifier(role)))
    with psycopg.connect(**ctx.postgres_kwargs(), connect_timeout=3, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute((SCHEMA_DIR / "postgres.sql").read_text())


def ensure_topics(admin: Any, ctx: StackContext, replication_factor: int,
                  configs: dict[str, str] | None = None, timeout_ms: int = 10000) -> None:
    """Create the events topic and its dead-letter topic if missing (idempotent)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    existing = set(admin.list_topics())
    wanted = [NewTopic(t, num_partitions=ctx.partitions, replication_factor=replication_factor,
                       topic_configs=configs or {})
              for t in (ctx.topic, ctx.dlq_topic) if t not in existing]
    if wanted:
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(wanted, timeout_ms=timeout_ms)


def _statements(script: str) -> list[str]:
    """Split a SQL script on ``;`` after dropping ``--`` comment lines (enough for our DDL files)."""
    body = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


# ---------------------------------------------------------------------------
# Kafka (single KRaft node; the HA profile runs three)
# ---------------------------------------------------------------------------
def kafka(ctx: StackContext) -> Component:
    conf = ctx.conf_dir / "kafka"
    data = ctx.data_dir / "kafka"
    eps = ctx.endpoints
    classpath = f"{ctx.tools.kafka_libs}/*"

    def prepare(c: StackContext) -> None:
        render("kafka-server.properties.tmpl", conf / "server.properties",
               controller_port=eps.port("kafka_controller"), kafka_port=eps.port("kafka"),
               service_port=eps.port("kafka_service"), proxy_port=eps.port("proxy_kafka"), data=data)
        render("kafka-log4j2.properties.tmpl", conf / "log4j2.properties")
        if (data / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        _run([c.tools.java, "-Xmx256m", "-cp", classpath, "kafka.tools.StorageTool", "format",
              "-t", cluster_id, "-c", str(conf / "server.properties")], "kafka", c)

    def _admin(c: StackContext):
        from kafka import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=c.endpoints.kafka_bootstrap, client_id="resilience-stack",
                                request_timeout_ms=5000, bootstrap_timeout_ms=3000)

    def probe(c: StackContext) -> str:
        admin = _admin(c)
        try:
            admin.describe_cluster()
        finally:
            admin.close()
        return "cluster metadata ok"

    def bootstrap(c: StackContext) -> str:
        admin = _admin(c)
        try:
            ensure_topics(admin, c, replication_factor=1)
        finally:
            admin.close()
        return f"topics {c.topic}, {c.dlq_topic} present"

    def health(c: StackContext) -> str:
        admin = _admin(c)
        try:
            meta = admin.describe_topics([c.topic])
        finally:
            admin.close()
        topic = meta[0]
        parts = topic["partitions"]
        # Field names follow the Metadata response schema (kafka-python 3 returns it raw).
        leaderless = [p.get("partition_index") for p in parts if p.get("leader_id", -1) < 0]
        if topic.get("error_code") or leaderless or not parts:
            raise ComponentError("kafka", f"topic {c.topic}: error {topic.get('error_code')}, "
                                          f"{len(parts)} partitions, without leader {leaderless}")
        return f"{c.topic}: {len(parts)} partitions, all led"

    heap = os.environ.get("RESILIENCE_KAFKA_HEAP", "512m")
    return Component(
        name="kafka",
        command=[ctx.tools.java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                 "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
                 "-cp", classpath, "kafka.Kafka", str(conf / "server.properties")],
        ports=["kafka", "kafka_controller", "kafka_service"],
        prepare=prepare,
        probe=probe,
        bootstrap=bootstrap,
        health=health,
        startup_timeout=90,
        endpoint=f"kafka://{eps.kafka_bootstrap} (service via {eps.kafka_bootstrap_service})",
    )


# ---------------------------------------------------------------------------
# Prometheus: scrape configuration generated from the components' metrics
# ---------------------------------------------------------------------------
FAST_SCRAPE = {
    # What recovery times are measured from (readiness, lag) is scraped twice a second, so an
    # RTO is resolved to about half a second; everything else once a second.
    group: {"scrape_interval": "500ms", "scrape_timeout": "400ms"} for group in ("audit-service", "exporters")
}


def prometheus(ctx: StackContext, scraped: list[Component]) -> Component:
    conf = ctx.conf_dir / "prometheus.yml"
    data = ctx.data_dir / "prometheus"
    url = ctx.endpoints.prometheus_url

    def prepare(c: StackContext) -> None:
        import yaml

        data.mkdir(parents=True, exist_ok=True)
        jobs: dict[str, list[dict[str, object]]] = {}
        for comp in scraped:
            if comp.metrics:
                labels = {"component": comp.name, **comp.metrics_labels}
                jobs.setdefault(comp.group if comp.group != "infra" else comp.name, []).append(
                    {"targets": [comp.metrics], "labels": labels})
        jobs["prometheus"] = [{"targets": [f"127.0.0.1:{c.endpoints.port('prometheus')}"],
                               "labels": {"component": "prometheus"}}]
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s",
                       "external_labels": {"stack": f"local-{c.endpoints.port_base}"}},
            "scrape_configs": [{"job_name": job, "static_configs": sc, **FAST_SCRAPE.get(job, {})}
                               for job, sc in sorted(jobs.items())],
        }
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("# Generated by resilience.stack from the component list; do not edit.\n"
                        + yaml.safe_dump(config, sort_keys=False))

    def probe(c: StackContext) -> str:
        requests.get(f"{url}/-/ready", timeout=2).raise_for_status()
        return "ready"

    def health(c: StackContext) -> str:
        requests.get(f"{url}/-/ready", timeout=2).raise_for_status()
        resp = requests.get(f"{url}/api/v1/targets", params={"state": "active"}, timeout=3)
        resp.raise_for_status()
        targets = resp.json()["data"]["activeTargets"]
        expected = _configured_targets(conf)
        down = sorted(f"{t['labels'].get('component', t['scrapeUrl'])}" for t in targets if t["health"] != "up")
        up = len(targets) - len(down)
        if len(targets) < expected or down:
            raise ComponentError("prometheus", f"{up}/{expected} targets up"
                                               + (f" (not up: {', '.join(down)})" if down else ""))
        return f"ready, {up}/{expected} targets up"

    return Component(
        name="prometheus",
        command=[ctx.tools.prometheus, f"--config.file={conf}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{ctx.endpoints.port('prometheus')}",
                 "--storage.tsdb.retention.time=3d", "--web.enable-admin-api", "--web.enable-lifecycle",
                 "--log.level=warn"],
        ports=["prometheus"],
        prepare=prepare,
        probe=probe,
        health=health,
        startup_timeout=30,
        endpoint=url,
    )


def _configured_targets(conf: Path) -> int:
    import yaml

    config = yaml.safe_load(conf.read_text())
    return sum(len(sc["targets"]) for job in config["scrape_configs"] for sc in job["static_configs"])


# ---------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------
PROFILES = ("minimal", "ha")


def components_for(ctx: StackContext) -> list[Component]:
    """All components of ``ctx.profile`` in start order (Prometheus last: it scrapes the others)."""
    if ctx.profile not in PROFILES:
        raise ValueError(f"unknown profile {ctx.profile!r}; known: {', '.join(PROFILES)}")
    # These modules import Component from this one, hence the late imports.
    from resilience.stack.audit_service import audit_service
    from resilience.stack.lag_exporter import lag_exporter

    if ctx.profile == "ha":
        from resilience.stack.ha import ha_components

        return ha_components(ctx)
    comps = [toxiproxy(ctx), postgres(ctx), clickhouse(ctx), kafka(ctx)]
    comps.extend(audit_service(ctx))
    comps.extend(lag_exporter(ctx))
    comps.append(prometheus(ctx, comps))
    return comps
