"""Kafka in KRaft mode: one combined broker+controller (minimal) or three (ha), and the topics.

Each broker has a DIRECT listener (load generator, probes) and a SERVICE listener advertised
at its toxiproxy address (the audit service), so a network fault on the Kafka edge bites the
service only. In the ha profile topics have replication factor 3, ``min.insync.replicas=2`` and
``unclean.leader.election.enable=false``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack.components.base import Component, render, run_command
from stack.context import StackContext
from stack.endpoints import HOST
from stack.errors import ComponentError
from stack.security import (
    KAFKA_BROKER_USER,
    KAFKA_MECHANISM,
    KAFKA_SERVICE_USER,
    KAFKA_SUITE_USER,
    ensure_tls,
    suite_kafka_auth,
)


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


def kafka(ctx: StackContext) -> Component:
    conf = ctx.conf_dir / "kafka"
    data = ctx.data_dir / "kafka"
    eps = ctx.endpoints
    classpath = f"{ctx.tools.kafka_libs}/*"

    def prepare(c: StackContext) -> None:
        protocol_map, security = _listener_security(c)
        render("kafka-server.properties.tmpl", conf / "server.properties",
               controller_port=eps.port("kafka_controller"), kafka_port=eps.port("kafka"),
               service_port=eps.port("kafka_service"), proxy_port=eps.port("proxy_kafka"), data=data,
               protocol_map=protocol_map, security=security)
        (conf / "server.properties").chmod(0o600)  # a secure stack's holds the broker's own SCRAM password
        render("kafka-log4j2.properties.tmpl", conf / "log4j2.properties")
        if (data / "meta.properties").exists():
            return
        run_command([c.tools.java, "-Xmx256m", "-cp", classpath, "kafka.tools.StorageTool", "format",
                     "-t", new_cluster_id(), "-c", str(conf / "server.properties"), *_scram_users(c)], "kafka", c)

    def _admin(c: StackContext):
        from kafka import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=c.endpoints.kafka_bootstrap, client_id="resilience-stack",
                                request_timeout_ms=5000, bootstrap_timeout_ms=3000,
                                **suite_kafka_auth(c).client_kwargs())

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
        startup_timeout=180,  # 34 s, 80 s, then over 90 s measured at load average 20-34 (cold start)
        endpoint=f"kafka://{eps.kafka_bootstrap} (service via {eps.kafka_bootstrap_service})",
    )


PLAIN_MAP = "DIRECT:PLAINTEXT,SERVICE:PLAINTEXT,CONTROLLER:PLAINTEXT"
SECURE_MAP = "DIRECT:SASL_SSL,SERVICE:SASL_SSL,CONTROLLER:PLAINTEXT"


def _listener_security(ctx: StackContext) -> tuple[str, str]:
    """``(listener.security.protocol.map, further properties)`` of the broker: PLAINTEXT, or on a secure stack
    SASL_SSL with SCRAM-SHA-512 on both client listeners (the broker logs in to itself as ``broker`` on
    DIRECT, its inter-broker listener), its key and certificate from the stack's CA (:mod:`stack.security`)."""
    if not ctx.secure:
        return PLAIN_MAP, ""
    tls = ensure_tls(ctx.data_dir)
    jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{KAFKA_BROKER_USER}" '
            f'password="{ctx.secrets.kafka_broker_password}";')
    mech = KAFKA_MECHANISM.lower()
    lines = [
        f"sasl.enabled.mechanisms={KAFKA_MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={KAFKA_MECHANISM}",
        f"listener.name.direct.{mech}.sasl.jaas.config={jaas}",
        f"listener.name.service.{mech}.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={tls.server_pem}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={tls.ca_cert}",
        "ssl.client.auth=none",
    ]
    return SECURE_MAP, "# --secure (stack/security.py)\n" + "\n".join(lines)


def _scram_users(ctx: StackContext) -> list[str]:
    """``--add-scram`` arguments of ``kafka-storage format``: the users exist in the metadata from the start."""
    if not ctx.secure:
        return []
    users = ((KAFKA_BROKER_USER, ctx.secrets.kafka_broker_password),
             (KAFKA_SERVICE_USER, ctx.secrets.kafka_service_password),
             (KAFKA_SUITE_USER, ctx.secrets.kafka_suite_password))
    args: list[str] = []
    for name, password in users:
        args += ["--add-scram", f"{KAFKA_MECHANISM}=[name={name},password={password}]"]
    return args


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


BROKERS = (Broker(0, "kafka", 1, "kafka", "kafka_controller", "kafka_service", "proxy_kafka", "kafka"),
           Broker(1, "kafka-2", 2, "kafka_2", "kafka_controller_2", "kafka_service_2", "proxy_kafka_2", "kafka-2"),
           Broker(2, "kafka-3", 3, "kafka_3", "kafka_controller_3", "kafka_service_3", "proxy_kafka_3", "kafka-3"))


def kafka_bootstrap_direct(ctx: StackContext) -> str:
    """Every broker's DIRECT listener, comma separated (load generator, probes)."""
    return ",".join(f"{HOST}:{ctx.endpoints.port(b.port)}" for b in BROKERS)


def _kafka_admin(ctx: StackContext, broker: Broker) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=f"{HOST}:{ctx.endpoints.port(broker.port)}",
                            client_id="resilience-stack", request_timeout_ms=5000, bootstrap_timeout_ms=3000)


def _live_brokers(cluster: dict[str, Any]) -> list[int]:
    """Ids of the registered, unfenced brokers in a DescribeCluster answer."""
    return sorted(int(b.get("broker_id", b.get("node_id", -1))) for b in cluster.get("brokers", [])
                  if not b.get("is_fenced"))


def new_cluster_id() -> str:
    """A random KRaft cluster id as Kafka's ``Uuid.randomUuid`` makes one: 16 random bytes in URL-safe base64, never
    starting with ``-``. One that did (1 in 64) was read by ``kafka-storage format -t`` as an option, and ``up``
    failed with "--cluster-id is required" (a test session's stack, 2026-12-02)."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            return made


def cluster_id(path: Path) -> str:
    """The ha cluster's one id, made by whichever broker prepares first: the three prepare at the same time, so
    the file appears whole or not at all (a link of a written file), and a broker that loses the race reads the
    winner's id instead of an empty file or an id of its own."""
    if not path.exists():
        draft = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
        draft.write_text(new_cluster_id())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def node(ctx: StackContext, broker: Broker) -> Component:
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
        run_command([c.tools.java, "-Xmx256m", "-cp", classpath, "kafka.tools.StorageTool", "format",
                   "-t", cluster_id(cluster_id_file), "-c", str(conf / "server.properties")],
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
