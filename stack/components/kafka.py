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
import uuid
from dataclasses import dataclass
from typing import Any

from stack.components.base import Component, render, run_command
from stack.context import StackContext
from stack.endpoints import HOST
from stack.errors import ComponentError


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
        render("kafka-server.properties.tmpl", conf / "server.properties",
               controller_port=eps.port("kafka_controller"), kafka_port=eps.port("kafka"),
               service_port=eps.port("kafka_service"), proxy_port=eps.port("proxy_kafka"), data=data)
        render("kafka-log4j2.properties.tmpl", conf / "log4j2.properties")
        if (data / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        run_command([c.tools.java, "-Xmx256m", "-cp", classpath, "kafka.tools.StorageTool", "format",
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
        startup_timeout=180,  # 34 s, 80 s, then over 90 s measured at load average 20-34 (cold start)
        endpoint=f"kafka://{eps.kafka_bootstrap} (service via {eps.kafka_bootstrap_service})",
    )


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
        if not cluster_id_file.exists():  # one cluster id for the three nodes
            cluster_id_file.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
        run_command([c.tools.java, "-Xmx256m", "-cp", classpath, "kafka.tools.StorageTool", "format",
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
