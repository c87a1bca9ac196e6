"""The staging presets (deploy/k8s/presets/) load through the settings model, and every key the suite reads can
be set in a target file.

Offline: the settings model, the Kubernetes keys' validation and guard, the presets' YAML. The kustomize build
and schema validation of ``presets/operators`` is in test_offline.py with the other kustomizations.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from target.kubernetes import KubeSettings
from target.settings import KEYS, SECRET_KEYS, TARGET_FILE_ENV, SettingsError, resolve
from tests.k8s.conftest import ROOT

PRESETS = ROOT / "deploy" / "k8s" / "presets"
SERVICE = "service-spring-boot.yaml"
DEPENDENCIES = ["strimzi.yaml", "zalando-postgres.yaml", "altinity-clickhouse.yaml"]


def _merge(*names: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in names:
        for key, value in yaml.safe_load((PRESETS / name).read_text()).items():
            merged[key] = {**merged[key], **value} if isinstance(value, dict) and key in merged else value
    return merged


def _resolve(path: Path) -> Any:
    return resolve({}, environ={TARGET_FILE_ENV: str(path)})


def test_the_operators_target_file_is_the_presets_merged() -> None:
    on_disk = yaml.safe_load((PRESETS / "operators" / "target.yaml").read_text())
    assert on_disk == _merge(SERVICE, *DEPENDENCIES), "regenerate operators/target.yaml from the preset files"


@pytest.mark.parametrize("dependency", DEPENDENCIES)
def test_every_preset_loads_through_the_settings_model(dependency: str, tmp_path: Path) -> None:
    target = tmp_path / "target.yaml"
    keys = _merge(SERVICE, dependency)
    target.write_text(yaml.safe_dump(keys))
    s = _resolve(target)
    for key in keys:
        if key.startswith("k8s_"):
            assert s.kubernetes_keys[key] == keys[key]
        else:
            assert s.source(key) == f"target file {target}", key
    kube = KubeSettings.from_configuration(s.kubernetes_keys)
    kube.guard("in-cluster", "https://10.96.0.1:443", "preset")  # its namespaces are all allow-listed
    edge = dependency.split("-")[-1].removesuffix(".yaml").replace("strimzi", "kafka")
    assert kube.edges[edge].namespace == edge


def test_the_operators_preset_resolves_whole(tmp_path: Path) -> None:
    s = _resolve(PRESETS / "operators" / "target.yaml")
    kube = KubeSettings.from_configuration(s.kubernetes_keys)
    assert kube.kafka_brokers == 3  # Strimzi's brokers are StrimziPodSet pods: the count must be given
    assert kube.patronictl == ("patronictl", "-c", "/home/postgres/postgres.yml")
    assert "spilo-role" in kube.postgres_leader_selector
    assert kube.clickhouse_statefulset.startswith("chi-audit-main-")
    assert s.contract.clickhouse_table == "audit_events_all" and s.contract.topic == "sql-audit-events"
    assert (s.kafka_security_protocol, s.kafka_sasl_mechanism, s.clickhouse_secure) == ("SASL_SSL", "SCRAM-SHA-512",
                                                                                        True)
    assert len(s.replica_urls) == s.expected_replicas == 3
    assert s.postgres_dsn and s.kafka_password is None  # the secret comes from the environment, never the file
    # The CA paths exist only in the runner's pod: building the login here names the key and the file.
    with pytest.raises(SettingsError, match=r"kafka_ca_file=.*target file"):
        s.kafka_auth()


#: A valid value of every key of the settings model (a new key without one fails the test below).
SAMPLES: dict[str, Any] = {
    "target": "kubernetes", "stack_port_base": 22000, "stack_data_dir": "/tmp/stack", "fault_state_dir": "/tmp/f",
    "run_id": "run-1", "run_started_at": 1796170000.0, "dry_run": True, "heartbeat_timeout": 5, "watchdog": False,
    "max_replicas_killed": 1,
    "prometheus_url": "http://prom:9090", "kafka_bootstrap": "kafka:9093", "clickhouse_host": "ch",
    "clickhouse_port": 9440, "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_username": "suite", "kafka_ca_file": "/etc/ca.pem", "clickhouse_user": "reader",
    "clickhouse_secure": True, "clickhouse_ca_file": "/etc/ch-ca.pem", "postgres_dsn": "postgresql://u@db/x",
    "prometheus_username": "viewer", "contract": {"topic": "events"}, "expected_replicas": 5,
    "replica_urls": ["http://svc-0:8080", "http://svc-1:8080"], "service": "spring",
    "api_urls": ["http://svc:8080"], "slo_file": "/tmp/slo.yaml",
    "metric_profiles": ["kubernetes"], "metric_selector": 'namespace="x"', "load_dir": "/tmp/load",
    "ledger_dir": "/tmp/ledger", "history_url": "sqlite:////tmp/h.sqlite",
}


def test_every_key_but_the_secrets_can_be_set_in_the_target_file(tmp_path: Path) -> None:
    names = {k.name for k in KEYS}
    assert set(SAMPLES) == names - set(SECRET_KEYS), "give every new settings key a sample value here"
    target = tmp_path / "target.yaml"
    target.write_text(yaml.safe_dump(SAMPLES))
    s = _resolve(target)
    for key in SAMPLES:
        assert s.source(key) == f"target file {target}", key
    assert s.replica_urls == ("http://svc-0:8080", "http://svc-1:8080")
    for key in SECRET_KEYS:
        target.write_text(yaml.safe_dump({key: "s3cret-in-a-file"}))
        with pytest.raises(SettingsError, match=rf"{key} .*never goes in a file"):
            _resolve(target)


def _k8s_keys_read() -> set[str]:
    """Every ``k8s_*`` key the source reads (f-string edges expanded)."""
    found: set[str] = set()
    for path in [*(ROOT / "target").glob("*.py"), *(ROOT / "faults").rglob("*.py"), *(ROOT / "probes").glob("*.py")]:
        text = path.read_text()
        found |= set(re.findall(r"[\"'](k8s_[a-z_]+)[\"']", text))
        for suffix in re.findall(r"f[\"']k8s_\{edge\}_([a-z_]+)[\"']", text):
            found |= {f"k8s_{edge}_{suffix}" for edge in ("kafka", "postgres", "clickhouse")}
    return found


def test_every_kubernetes_key_the_backends_read_comes_through_the_target_file(tmp_path: Path) -> None:
    keys = _k8s_keys_read()
    assert {"k8s_namespace", "k8s_patronictl", "k8s_kafka_selector", "k8s_clickhouse_namespace"} <= keys
    target = tmp_path / "target.yaml"
    target.write_text(yaml.safe_dump(dict.fromkeys(sorted(keys), "x")))
    assert set(_resolve(target).kubernetes_keys) == keys
    doc = (ROOT / "docs" / "faults.md").read_text()
    generic = {"k8s_kafka_selector", "k8s_postgres_selector", "k8s_clickhouse_selector", "k8s_kafka_namespace",
               "k8s_postgres_namespace", "k8s_clickhouse_namespace", "k8s_kafka_cidrs", "k8s_postgres_cidrs",
               "k8s_clickhouse_cidrs"}
    undocumented = sorted(k for k in keys - generic if f"`{k}`" not in doc)
    assert undocumented == [], "document these keys in docs/faults.md ('Kubernetes target')"


def test_the_runner_gets_its_secrets_under_the_names_the_settings_model_reads() -> None:
    env_of = {k.name: k.env for k in KEYS}
    secret_vars = {env_of[k] for k in SECRET_KEYS}
    for name in ("cronjob.yaml", "job-gate.yaml"):
        text = (ROOT / "deploy" / "k8s" / "base" / name).read_text()
        from_secrets = set(re.findall(r"- name: ([A-Z_]+)\s*(?:#.*)?\n\s*valueFrom:\s*\n\s*secretKeyRef", text))
        assert from_secrets and from_secrets <= secret_vars, f"{name}: {sorted(from_secrets - secret_vars)} are read " \
                                                             "by nothing"


def test_the_dependency_roles_grant_nothing_the_base_role_does_not() -> None:
    base = yaml.safe_load((ROOT / "deploy" / "k8s" / "base" / "role.yaml").read_text())
    granted = {(g, r, v) for rule in base["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    docs = list(yaml.safe_load_all((PRESETS / "operators" / "dependency-rbac.yaml").read_text()))
    roles = [d for d in docs if d["kind"] == "Role"]
    assert {r["metadata"]["namespace"] for r in roles} == {"kafka", "postgres", "clickhouse"}
    for role in roles:
        asked = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
                 for v in rule["verbs"]}
        assert asked <= granted, (role["metadata"]["namespace"], sorted(asked - granted))
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "sql-audit-resilience", "namespace": "sql-audit"}]
               for b in bindings) and len(bindings) == 3


def test_the_dependency_roles_let_the_sweeper_find_holds_where_it_looks() -> None:
    """The sweeper lists StatefulSets in the service's, Kafka's and PostgreSQL's namespaces and reads ClickHouse's
    set by name (where the restores look): each dependency Role grants that read, and the patch of a hold where a
    hold can be (Strimzi's brokers are no StatefulSet's: a duration is refused there, so nothing to patch)."""
    from types import SimpleNamespace

    from faults.kubernetes.sweep import hold_namespaces

    settings = KubeSettings.from_configuration(_resolve(PRESETS / "operators" / "target.yaml").kubernetes_keys)
    listed, by_name = hold_namespaces(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    assert (listed, by_name) == (["kafka", "postgres", "sql-audit"], ("clickhouse", "chi-audit-main-0-0"))
    docs = yaml.safe_load_all((PRESETS / "operators" / "dependency-rbac.yaml").read_text())
    verbs = {d["metadata"]["namespace"]: {v for rule in d["rules"] if "statefulsets" in rule["resources"]
                                          for v in rule["verbs"]} for d in docs if d["kind"] == "Role"}
    assert all("list" in verbs[ns] for ns in listed if ns != "sql-audit")
    assert {"get", "patch"} <= verbs["clickhouse"] and "patch" in verbs["postgres"]
