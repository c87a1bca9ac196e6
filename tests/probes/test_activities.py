"""The Chaos Toolkit face of the probes: discovery and configuration errors (no stack needed)."""

from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

import chaossqlaudit
from probes import activities, splitbrain
from probes.endpoints import ProbeEndpoints


def test_discovery_lists_every_exported_probe() -> None:
    found = [a for a in chaossqlaudit.discover()["activities"] if a["type"] == "probe"]
    names = {a["name"] for a in found}
    assert names == set(activities.__all__) | set(splitbrain.__all__)
    assert all(a["type"] == "probe" and a["mod"] in ("probes.activities", "probes.splitbrain") for a in found)
    lag = next(a for a in found if a["name"] == "consumer_lag")
    assert "Kafka" in lag["doc"]


def test_kubernetes_target_must_name_its_endpoints() -> None:
    with pytest.raises(ActivityFailed, match="prometheus_url is required for target kubernetes"):
        ProbeEndpoints.from_configuration({"target": "kubernetes"})


def test_local_target_derives_endpoints_and_explicit_keys_win() -> None:
    s = ProbeEndpoints.from_configuration({"stack_port_base": 20000, "prometheus_url": "http://prom:9090/"})
    assert (s.kafka_bootstrap, s.clickhouse_port, s.prometheus_url) == ("127.0.0.1:20000", 20004, "http://prom:9090")


@pytest.mark.parametrize("cfg, match", [
    ({"target": "mars"}, "target='mars'"),
    ({"stack_port_base": "abc"}, "stack_port_base='abc'"),
    ({"slo_file": "/nonexistent/slo.yaml"}, "/nonexistent/slo.yaml: cannot read"),
])
def test_bad_configuration_is_named(cfg: dict[str, object], match: str) -> None:
    with pytest.raises(ActivityFailed, match=match):
        activities.slo_value("latency_p95", configuration=cfg)


def test_unknown_slo_and_bad_kind_are_named() -> None:
    with pytest.raises(ActivityFailed, match="no SLO 'nope'"):
        activities.slo_value("nope", configuration={"stack_port_base": 20000})
    with pytest.raises(ActivityFailed, match="latency kind 'median'"):
        activities.latency_p95_seconds("median", configuration={"stack_port_base": 20000})


def test_unreachable_prometheus_is_an_error_naming_the_url() -> None:
    with pytest.raises(ActivityFailed, match=r"Prometheus at http://127\.0\.0\.1:1: query failed"):
        activities.ready_replicas(configuration={"prometheus_url": "http://127.0.0.1:1/", "stack_port_base": 20000})


def test_data_loss_needs_a_ledger() -> None:
    with pytest.raises(ActivityFailed, match="ledger_dir is required"):
        activities.data_loss(configuration={"stack_port_base": 20000})


def test_target_config_file_fills_keys_the_experiment_does_not_set(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "target.yaml"
    target.write_text("target: kubernetes\nprometheus_url: http://prom.monitoring:9090\n"
                      "kafka_bootstrap: kafka:9092\nclickhouse_host: ch\nclickhouse_port: 9000\n")
    monkeypatch.setenv("RESILIENCE_TARGET_CONFIG", str(target))
    s = ProbeEndpoints.from_configuration({"clickhouse_port": 9440})  # the experiment's own key wins
    assert (s.target, s.prometheus_url, s.kafka_bootstrap, s.clickhouse_port) == (
        "kubernetes", "http://prom.monitoring:9090", "kafka:9092", 9440)
    target.write_text("- not a mapping\n")
    with pytest.raises(ActivityFailed, match=f"RESILIENCE_TARGET_CONFIG={target}: expected a mapping"):
        ProbeEndpoints.from_configuration({})
