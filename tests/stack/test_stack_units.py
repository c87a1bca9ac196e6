"""Pure functions of the stack: port plan, generated configs. No processes."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
import yaml

from stack import supervisor as sv
from stack.components import base as comps
from stack.components import prometheus
from stack.core import LocalStack
from stack.endpoints import MINIMAL_SPAN, OFFSETS, SPAN, Endpoints
from stack.errors import StackError


def test_ports_are_distinct_and_within_the_span() -> None:
    ep = Endpoints(20000)
    ports = [ep.port(n) for n in OFFSETS] + [ep.replica_port(i) for i in range(10)]
    named = [ep.port(n) for n in OFFSETS]
    assert len(set(named)) == len(named)
    assert all(20000 <= p < 20000 + SPAN for p in ports)


def test_two_port_bases_do_not_overlap() -> None:
    a, b = Endpoints(20000), Endpoints(20000 + SPAN)
    pa = {a.port(n) for n in OFFSETS} | {a.replica_port(i) for i in range(10)}
    pb = {b.port(n) for n in OFFSETS} | {b.replica_port(i) for i in range(10)}
    assert not pa & pb


def test_replica_index_is_bounded() -> None:
    with pytest.raises(ValueError, match="replica index 10"):
        Endpoints().replica_port(10)


def test_port_base_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="--port-base 80"):
        LocalStack(port_base=80, data_dir=tmp_path)


def test_unknown_profile_is_refused(tmp_path: Path) -> None:
    stack = LocalStack(port_base=20000, data_dir=tmp_path, profile="nonsense")
    with pytest.raises(ValueError, match="unknown profile 'nonsense'"):
        stack.components()


def test_supervisor_config_round_trips_every_command(tmp_path: Path) -> None:
    stack = LocalStack(port_base=20000, data_dir=tmp_path)
    components = stack.components()
    path = sv.write_config(stack.ctx, components)
    cfg = configparser.RawConfigParser()
    cfg.read(path)
    for comp in components:
        section = cfg[f"program:{comp.name}"]
        # supervisord expands %(name)s in a command, so a literal % is written %% (PostgreSQL's archive_command)
        assert shlex.split(section["command"].replace("%%", "%")) == comp.command
        assert "%" not in section["command"].replace("%%", "")
        assert section["autorestart"] == "true"
        assert section["stopasgroup"] == section["killasgroup"] == "true"
    assert cfg["program:postgres"]["user"] == "postgres"


def test_prometheus_scrape_config_is_generated_from_components(tmp_path: Path) -> None:
    stack = LocalStack(port_base=20000, data_dir=tmp_path)
    fake = comps.Component(name="audit-service-0", command=["true"], ports=[], probe=lambda c: "",
                           health=lambda c: "", metrics="127.0.0.1:20020", group="audit-service",
                           metrics_labels={"replica": "audit-service-0"})
    prom = prometheus.prometheus(stack.ctx, [*stack.components(), fake])
    assert prom.prepare is not None
    prom.prepare(stack.ctx)
    config = yaml.safe_load((stack.ctx.conf_dir / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "1s"
    jobs = {j["job_name"]: j["static_configs"] for j in config["scrape_configs"]}
    # the profile's own replicas are scraped too (audit_service.py); the fake one joins their job
    assert {"targets": ["127.0.0.1:20020"],
            "labels": {"component": "audit-service-0", "replica": "audit-service-0"}} in jobs["audit-service"]
    assert "prometheus" in jobs and "toxiproxy" in jobs


def test_minimal_profile_binds_only_ports_below_the_minimal_span(tmp_path: Path) -> None:
    stack = LocalStack(port_base=20000, data_dir=tmp_path)
    names = {n for comp in stack.components() for n in comp.ports}
    assert all(OFFSETS[n] < MINIMAL_SPAN for n in names)
    assert set(stack.endpoints.proxies()) == {"kafka", "postgres", "clickhouse"}


def test_ha_profile_ports_are_distinct_and_each_member_has_a_proxy(tmp_path: Path) -> None:
    stack = LocalStack(port_base=20000, data_dir=tmp_path, profile="ha")
    components = stack.components()
    ports = [stack.endpoints.port(n) for comp in components for n in comp.ports]
    assert len(ports) == len(set(ports))
    assert all(20000 <= p < 20000 + SPAN for p in ports)
    proxies = stack.endpoints.proxies("ha")
    assert {"kafka_2", "kafka_3", "postgres_2", "clickhouse_2", "clickhouse_3", "clickhouse_4"} <= set(proxies)
    patroni_edges = stack.endpoints.patroni_proxies()  # members -> etcd and -> each other: upstreams shared
    upstreams = [up for name, (_, up) in proxies.items() if name not in patroni_edges]
    assert len(upstreams) == len(set(upstreams))
    assert set(patroni_edges) <= set(proxies) and len({listen for listen, _ in proxies.values()}) == len(proxies)
    names = {c.name for c in components}
    assert {"etcd", "zookeeper", "postgres", "postgres-2", "clickhouse", "clickhouse-2", "clickhouse-3",
            "clickhouse-4", "kafka", "kafka-2", "kafka-3"} <= names


def test_ha_supervisor_config_and_service_environment(tmp_path: Path) -> None:
    stack = LocalStack(port_base=20000, data_dir=tmp_path, profile="ha")
    components = stack.components()
    path = sv.write_config(stack.ctx, components)
    cfg = configparser.RawConfigParser()
    cfg.read(path)
    for comp in components:
        assert shlex.split(cfg[f"program:{comp.name}"]["command"]) == comp.command
    assert cfg["program:postgres"]["user"] == cfg["program:postgres-2"]["user"] == "postgres"
    replica = next(c for c in components if c.name == "audit-service-0")
    env = replica.environment
    assert env["SQLAUDIT_KAFKA_BOOTSTRAP"].count(",") == 2
    assert "target_session_attrs=read-write" in env["SQLAUDIT_PG_DSN"] and "20049" in env["SQLAUDIT_PG_DSN"]
    assert env["SQLAUDIT_CH_ALT_HOSTS"] == "127.0.0.1:20057,127.0.0.1:20033,127.0.0.1:20037"
    assert env["SQLAUDIT_CH_TABLE"] == "audit_events_all"
    kwargs = stack.ctx.postgres_kwargs()
    assert kwargs["port"] == "20003,20048" and kwargs["target_session_attrs"] == "read-write"


@pytest.mark.parametrize("profile", ["minimal", "ha"])
def test_spring_service_replicas_take_the_python_ones_places(tmp_path: Path, profile: str) -> None:
    """``--service spring``: same program names, ports and group; the JVM via run.sh; its metrics path; the
    ClickHouse edges lead to the HTTP port its sink speaks; the secrets in the environment only."""
    python = LocalStack(port_base=20000, data_dir=tmp_path / "py", profile=profile)
    spring = LocalStack(port_base=20000, data_dir=tmp_path / "spring", profile=profile, service="spring")
    replicas = {c.name: c for c in spring.components() if c.group == "audit-service"}
    assert set(replicas) == {c.name for c in python.components() if c.group == "audit-service"}
    r0 = replicas["audit-service-0"]
    assert r0.command[-1].endswith("services/spring/run.sh") and r0.metrics_path == "/actuator/prometheus"
    assert r0.metrics == next(c.metrics for c in python.components() if c.name == "audit-service-0")
    assert r0.environment["SQLAUDIT_JWT_SECRET"] == spring.ctx.secrets.jwt_secret
    assert spring.ctx.secrets.jwt_secret not in " ".join(r0.command)
    eps = spring.endpoints
    ch = [n for n in spring.endpoints.proxies(profile, "spring") if n.startswith("clickhouse")]
    assert all(spring.endpoints.proxies(profile, "spring")[n][1] == eps.port(n.replace("clickhouse", "clickhouse_http"))
               for n in ch)
    assert all(python.endpoints.proxies(profile)[n][1] == eps.port(n.replace("clickhouse", "clickhouse_tcp"))
               for n in ch)
    urls = r0.environment["SQLAUDIT_CLICKHOUSE_URLS"].split(",")
    assert len(urls) == len(ch) and r0.environment["SPRING_DATASOURCE_URL"].startswith("jdbc:postgresql://")
    prom = next(c for c in spring.components() if c.name == "prometheus")
    assert prom.prepare is not None
    prom.prepare(spring.ctx)
    config = yaml.safe_load((spring.ctx.conf_dir / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "audit-service")
    assert job["metrics_path"] == "/actuator/prometheus" and job["scrape_timeout"] == "1900ms"
    assert "query_log_file" in config["global"]


def test_prometheus_evaluates_the_alert_rules_every_second(tmp_path: Path) -> None:
    """The stack's Prometheus loads a copy of deploy/local/alert-rules.yaml (its health then needs them loaded)."""
    stack = LocalStack(port_base=20000, data_dir=tmp_path)
    prom = next(c for c in stack.components() if c.name == "prometheus")
    assert prom.prepare is not None
    prom.prepare(stack.ctx)
    config = yaml.safe_load((stack.ctx.conf_dir / "prometheus.yml").read_text())
    assert config["global"]["evaluation_interval"] == "1s"
    [rules] = config["rule_files"]
    assert Path(rules).parent == stack.ctx.conf_dir
    assert Path(rules).read_text() == prometheus.ALERT_RULES.read_text()


def test_the_first_component_to_fail_is_reported_and_the_others_stop_waiting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash loop in one infrastructure component ends ``up`` at once, named as itself, however long a
    sibling listed before it would take (CI once saw Kafka's later failure reported instead of ClickHouse's)."""
    import time

    from stack.errors import ComponentError

    st = LocalStack(port_base=20000, data_dir=tmp_path)
    monkeypatch.setattr(st, "_info", lambda name: {"statename": "RUNNING"})
    waited: list[str] = []

    def slow(ctx: object) -> str:
        waited.append("slow")
        raise ConnectionRefusedError("not yet")

    def broken(ctx: object) -> str:
        raise ComponentError("broken", "process exited 3 times while starting")

    def component(name: str, probe: comps.Check, timeout: float) -> comps.Component:
        return comps.Component(name=name, command=["true"], ports=[], probe=probe, health=probe,
                               startup_timeout=timeout)

    monkeypatch.setattr(st, "_component_error", lambda comp, message: ComponentError(comp.name, message))
    t0 = time.monotonic()
    with pytest.raises(ComponentError) as err:
        # "broken" raises ComponentError from inside its check: the wait treats a check's error as "not
        # yet", so it fails on its own (short) timeout, while "slow", listed first, would wait 60 s.
        st._wait_all([component("slow", slow, 60.0), component("broken", broken, 1.0)], lambda *a: None)
    took = time.monotonic() - t0
    assert err.value.component == "broken", err.value.message
    assert took < 10, f"up waited {took:.1f} s for a sibling after the first failure"
    calls = len(waited)
    time.sleep(0.6)
    assert len(waited) == calls, "the sibling's wait went on after the failure was reported"


def test_the_ha_brokers_preparing_at_once_share_one_whole_cluster_id(tmp_path: Path) -> None:
    """The three ha brokers prepare in parallel threads (``stack up``); each formats its storage with the id the
    first one made. A check-then-write lost that race on 2026-12-02: a broker read the file while another was
    still writing it and ``kafka-storage format -t ''`` stopped ``up``."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from stack.components.kafka import cluster_id

    for trial in range(20):
        path = tmp_path / f"kafka-cluster-id-{trial}"
        start = Barrier(8)

        def prepare(path: Path = path, start: Barrier = start) -> str:
            start.wait()
            return cluster_id(path)

        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = [f.result() for f in [pool.submit(prepare) for _ in range(8)]]
        assert len(set(ids)) == 1 and len(ids[0]) == 22, (trial, ids)
        assert path.read_text() == ids[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"kafka-cluster-id-{t}" for t in range(20))


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """``kafka-storage format -t -AAA...`` reads the id as an option ("--cluster-id is required"): 1 id in 64 did,
    and a test session's ``up`` failed on one. The first uuid drawn here encodes to ``-AAAA...``; the id made must
    be the next one, as Kafka's own ``Uuid.randomUuid`` does."""
    import uuid as uuid_module

    from stack.components import kafka

    drawn = iter([uuid_module.UUID(bytes=bytes([0xF8]) + bytes(15)), uuid_module.UUID(int=1)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(drawn))
    made = kafka.new_cluster_id()
    assert made == "AAAAAAAAAAAAAAAAAAAAAQ" and not made.startswith("-")
