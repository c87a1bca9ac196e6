"""Offline checks of deploy/k8s and faults/kubernetes: no cluster, no network.

* every manifest kustomize renders validates (strict: no unknown fields) against the Kubernetes
  1.37 OpenAPI-derived JSON schemas shipped in the PyPI package ``kubernetes-validate``;
* the Role grants exactly :data:`faults.kubernetes.client.CALLS`;
* the Dockerfile runs as a non-root user, pins its base and bakes no secret;
* ``promtool check rules`` and ``promtool test rules`` pass; the Grafana dashboard has its panels;
* the safety guard, selector parsing and the partition policy, as pure functions.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

from faults.checker_edit import edit_threshold
from faults.kubernetes.client import CALLS, Call, rollout_status
from faults.kubernetes.network_partition import policy_body
from faults.kubernetes.selectors import label_selector
from target.kubernetes import KubeSettings, looks_like_production
from tests.k8s.conftest import ROOT, kustomize

K8S = ROOT / "deploy/k8s"
KUSTOMIZATIONS = ["base", "overlays/staging", "example-service", "presets/operators"]
SCHEMA_VERSION = "1.37.0"


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, kustomize(K8S / request.param)


def test_kustomizations_build(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = rendered
    assert docs, f"{name} rendered nothing"
    assert all(d.get("metadata", {}).get("namespace") for d in docs), f"{name}: a namespaced object lacks namespace"


def test_manifests_validate_against_the_kubernetes_schemas(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    import kubernetes_validate as kv  # the test extra: make test installs it
    name, docs = rendered
    errors = []
    for doc in docs:
        try:
            kv.validate(doc, SCHEMA_VERSION, strict=True)
        except kv.ValidationError as exc:
            errors.append(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert errors == []


def test_the_validator_can_fail() -> None:
    import kubernetes_validate as kv
    bad = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"},
           "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid", "jobTemplate": {"spec": {
               "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": 3}]}}}},
                    "notAField": True}}
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, SCHEMA_VERSION, strict=True)


def test_no_secret_values_in_git() -> None:
    for path in K8S.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                assert not doc.get("data") and not doc.get("stringData"), f"{path}: a Secret with values"
    for doc in kustomize(K8S / "overlays/staging"):
        assert doc["kind"] != "Secret", "secrets are referenced, never generated from git"


def test_scheduled_run_and_gate_are_bounded() -> None:
    docs = {d["kind"]: d for d in kustomize(K8S / "overlays/staging")}
    cron = docs["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["startingDeadlineSeconds"] > 0
    assert cron["successfulJobsHistoryLimit"] >= 1 and cron["failedJobsHistoryLimit"] >= 1
    for job in (cron["jobTemplate"]["spec"], docs["Job"]["spec"]):
        assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] == 0
        pod = job["template"]["spec"]
        assert pod["serviceAccountName"] == "sql-audit-resilience"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert any(v.get("persistentVolumeClaim") for v in pod["volumes"])


def test_the_sweeper_runs_the_sweep_as_the_runner_with_the_target_file() -> None:
    """deploy/k8s/base's sweeper: one replica of the runner image running ``faults.cli sweep --every 30`` as the
    CronJob's cleanup container calls faults.cli, with the runner's ServiceAccount and security context and the
    target file mounted as the CronJob mounts it; no journal volume, no store credentials, tiny resources."""
    from faults import cli

    docs = kustomize(K8S / "base")
    sweeper = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "resilience-sweeper")
    cron = next(d for d in docs if d["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod, cleanup = sweeper["spec"]["template"]["spec"], cron["initContainers"][0]
    [container] = pod["containers"]
    assert sweeper["spec"]["replicas"] == 1
    component = {"app.kubernetes.io/component": "sweeper"}
    selector, labels = sweeper["spec"]["selector"]["matchLabels"], sweeper["spec"]["template"]["metadata"]["labels"]
    assert component.items() <= selector.items() <= labels.items()
    assert container["image"] == cleanup["image"] == "sql-audit-resilience"
    assert container["command"] == ["python", "-m", "faults.cli", "sweep", "--every", "30"]
    assert container["command"][:3] == cleanup["command"][:3]
    assert cli.main.commands[container["command"][3]] is cli.sweep_command
    parsed = cli.sweep_command.make_context("sweep", [*container["command"][4:], "--target-config",
                                                      str(K8S / "base" / "target.yaml")])
    assert parsed.params["every"] == 30 and parsed.params["dry_run"] is False
    assert pod["serviceAccountName"] == cron["serviceAccountName"] == "sql-audit-resilience"
    assert pod["securityContext"] == {k: v for k, v in cron["securityContext"].items() if k != "fsGroup"}
    assert container["securityContext"] == cleanup["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["resources"] == {"requests": {"cpu": "10m", "memory": "160Mi"}, "limits": {"memory": "256Mi"}}

    def target_volume(spec: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/resilience")
        return next(v for v in spec["volumes"] if v["name"] == mount["name"])["configMap"]

    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env == {"RESILIENCE_TARGET_CONFIG": "/etc/resilience/target.yaml"}
    assert env["RESILIENCE_TARGET_CONFIG"] in [e.get("value") for e in cron["containers"][0]["env"]]
    assert target_volume(pod, container) == target_volume(cron, cron["containers"][0])
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"]) and "envFrom" not in container


def test_example_service_is_a_three_replica_statefulset_with_pdb_and_probes() -> None:
    docs = {d["kind"]: d for d in kustomize(K8S / "example-service")}
    sts = docs["StatefulSet"]["spec"]
    assert sts["replicas"] == 3
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 2
    container = sts["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/actuator/health/liveness"
    assert container["readinessProbe"]["httpGet"]["path"] == "/actuator/health/readiness"


def test_example_service_reads_the_checkers_configmap_the_config_fault_patches() -> None:
    """Defaults of k8s_checkers_configmap/_key and k8s_service_statefulset name what example-service deploys."""
    defaults = settings()
    docs = kustomize(K8S / "example-service")
    [sts] = [d for d in docs if d["kind"] == "StatefulSet"]
    assert sts["metadata"]["name"] == defaults.service_statefulset
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == defaults.checkers_configmap]
    assert cm["data"][defaults.checkers_key] == (ROOT / "sqlaudit/checkers.yaml").read_text()  # the packaged copy
    pod = sts["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v.get("configMap", {}).get("name") == defaults.checkers_configmap]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert "subPath" not in mount  # a subPath mount would never see the patched file, even after a restart
    env = {k: v for d in docs if d["kind"] == "ConfigMap" for k, v in d["data"].items() if k.startswith("SQLAUDIT_")}
    assert env["SQLAUDIT_CHECKERS_CONFIG"] == f"{mount['mountPath']}/{defaults.checkers_key}"


def test_edit_threshold_changes_one_line_and_keeps_the_comments() -> None:
    text = (ROOT / "sqlaudit/checkers.yaml").read_text()
    new, old, value = edit_threshold(text, "frequency", "threshold", 250, "t", "here")
    assert (old, value) == (100, 250)
    diff = [(a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=True) if a != b]
    assert diff == [("  threshold: 100            # WARNING on the (threshold+1)-th occurrence in the window",
                     "  threshold: 250            # WARNING on the (threshold+1)-th occurrence in the window")]
    # a value whose plain form YAML would read back as a string: the whole document is dumped anew, correctly
    new, old, value = edit_threshold(text, "error_rate", "threshold", 1e-05, "t", "here")
    assert yaml.safe_load(new)["error_rate"]["threshold"] == 1e-05 and old == 0.5
    assert yaml.safe_load(new)["frequency"] == yaml.safe_load(text)["frequency"]
    crlf = text.replace("\n", "\r\n")  # line ends kept too
    assert edit_threshold(crlf, "slow_query", "critical_ms", 6000, "t", "here")[0] == crlf.replace(
        "critical_ms: 5000 ", "critical_ms: 6000 ")
    with pytest.raises(ActivityFailed, match=r"slow_query\.threshold_ms is an integer; value=2\.5 is not"):
        edit_threshold(text, "slow_query", "threshold_ms", 2.5, "t", "here")
    with pytest.raises(ActivityFailed, match="here is not valid YAML"):
        edit_threshold("a: [", "a", "x", 1, "t", "here")


def _sts(**status: Any) -> Any:
    import kubernetes

    m = kubernetes.client
    rolling = m.V1RollingUpdateStatefulSetStrategy(partition=status.pop("partition", 0))
    strategy = status.pop("strategy", m.V1StatefulSetUpdateStrategy(type="RollingUpdate", rolling_update=rolling))
    full = {"observed_generation": 2, "ready_replicas": 3, "updated_replicas": 3, "current_revision": "r2",
            "update_revision": "r2", "replicas": 3, **status}
    return m.V1StatefulSet(metadata=m.V1ObjectMeta(name="s", generation=2),
                           spec=m.V1StatefulSetSpec(replicas=3, selector=m.V1LabelSelector(), service_name="s",
                                                    template=m.V1PodTemplateSpec(), update_strategy=strategy),
                           status=m.V1StatefulSetStatus(**full))


@pytest.mark.parametrize(("status", "done", "says"), [
    ({}, True, "complete: 3 pods at revision r2"),
    ({"observed_generation": 1}, False, "observe generation 2"),
    ({"ready_replicas": 2}, False, "1 of 3 pods of s to be Ready"),
    ({"updated_replicas": 1}, False, "1 of 3 pods at revision r2"),
    ({"current_revision": "r1"}, False, "to complete at revision r2"),
    ({"partition": 2, "updated_replicas": 1, "current_revision": "r1"}, True, "complete"),
    ({"strategy": None}, True, "complete"),
])
def test_rollout_status_judges_as_kubectl(status: dict[str, Any], done: bool, says: str) -> None:
    ok, message = rollout_status(_sts(**status))
    assert ok is done and says in message


def test_rollout_status_of_on_delete_never_completes() -> None:
    import kubernetes

    ok, message = rollout_status(_sts(strategy=kubernetes.client.V1StatefulSetUpdateStrategy(type="OnDelete")))
    assert not ok and "OnDelete" in message


# ----------------------------------------------------------------------------- RBAC
def role_calls() -> set[Call]:
    [role] = [d for d in kustomize(K8S / "base") if d["kind"] == "Role"]
    return {Call(verb, group, resource) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_role_grants_exactly_what_the_backends_call() -> None:
    granted = role_calls()
    assert CALLS - granted == set(), "backend calls the Role does not grant"
    assert granted - CALLS == set(), "Role grants calls no backend makes"


def test_the_role_grants_what_the_sweeper_calls() -> None:
    """The sweeper runs as the runner's ServiceAccount: what it calls (sweep.CALLS; tests/k8s/test_apiserver.py
    records the calls of a real sweep against it) must be in the Role, which needs nothing new for it."""
    from faults.kubernetes import sweep

    assert sweep.CALLS - role_calls() == set()
    assert not sweep.CALLS - CALLS, "the sweep calls what no backend declares"


def test_every_backend_request_goes_through_a_declared_call() -> None:
    """Static half of the check: each ``_send`` in client.py names a (verb, group, resource) of CALLS."""
    source = (ROOT / "faults/kubernetes/client.py").read_text()
    sends = re.findall(r'self\._send\(\s*"(\w+)",\s*"([\w.-]*)",\s*"([\w/]+)"[^)]*?(?:also=\(([^)]*)\))?\)',
                       source, re.S)
    assert sends, "no _send call found: did the client change shape?"
    declared = {Call(verb, group, resource) for verb, group, resource, _ in sends}
    declared |= {Call(v, group, resource) for _, group, resource, also in sends for v in re.findall(r'"(\w+)"', also)}
    assert declared == set(CALLS)
    backends = "".join(p.read_text() for p in (ROOT / "faults/kubernetes").glob("*.py") if p.name != "client.py")
    for needle in ("kubernetes.client.", "CoreV1Api", "call_api", "connect_get_namespaced_pod_exec"):
        assert needle not in backends, f"a backend calls the API around faults.kubernetes.client ({needle})"


# ----------------------------------------------------------------------------- Dockerfile
def test_dockerfile_lint() -> None:
    text = (K8S / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    froms = [ln.split()[1] for ln in lines if ln.upper().startswith("FROM ")]
    assert froms and all(re.search(r":\d+\.\d+\.\d+", f) or "@sha256:" in f for f in froms), froms
    assert not any(f.endswith(":latest") for f in froms)
    users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must end as a non-root user"
    for ln in lines:
        if ln.upper().startswith(("ENV ", "ARG ", "LABEL ")) or "=" in ln:
            assert not re.search(r"(PASSWORD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY)\s*=\s*\S", ln, re.I), ln
    assert not re.search(r"^(ADD|COPY)\s+.*(\.kube|id_rsa|\.pem|\.env)\b", text, re.M | re.I)


def test_dockerfile_copies_every_package_of_pyproject() -> None:
    """An image without one of them fails at its first import: `faults.cli` (the cleanup container and the
    sweeper) imports `target` and `stack`, which the Dockerfile did not copy."""
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
    copied = set(re.findall(r"^COPY\s+(\S+)\s+\./\1\s*$", (K8S / "Dockerfile").read_text(), re.M))
    assert set(packages) <= copied, sorted(set(packages) - copied)


# ----------------------------------------------------------------------------- Prometheus, Grafana
def test_alert_rules_pass_promtool() -> None:
    mon = K8S / "monitoring"
    check = subprocess.run(["promtool", "check", "rules", "alert-rules.yaml"], cwd=mon, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(["promtool", "test", "rules", "tests/alert-rules-test.yaml"], cwd=mon,
                          capture_output=True, text=True, timeout=60)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_alert_thresholds_match_the_slo_catalogue() -> None:
    rules = {r["alert"]: r for g in yaml.safe_load((K8S / "monitoring/alert-rules.yaml").read_text())["groups"]
             for r in g["rules"]}
    slos = {s["id"]: s for s in yaml.safe_load((ROOT / "docs/slo.yaml").read_text())["slos"]}
    for alert, slo in (("KafkaConsumerLagWarning", "consumer_lag_warning"),
                       ("KafkaConsumerLagCritical", "consumer_lag_critical"),
                       ("ProcessingLatencyP95High", "latency_p95"), ("ProcessingErrorRateHigh", "error_rate")):
        value = slos[slo]["objective"]["value"]
        assert rules[alert]["labels"]["slo"] == slo
        assert re.search(rf"> {value:g}\s*$", rules[alert]["expr"].strip()), (alert, value, rules[alert]["expr"])


def test_grafana_dashboard_has_the_chaos_panels_and_fault_annotations() -> None:
    dash = json.loads((K8S / "monitoring/grafana-dashboard.json").read_text())
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for word in ("lag", "p95", "throughput", "errors", "ready replicas"):
        assert word in titles
    assert all(t["expr"] for p in dash["panels"] for t in p["targets"])
    annotations = dash["annotations"]["list"]
    assert any("fault" in a["target"].get("tags", []) for a in annotations if "target" in a)
    assert any("chaos-partition" in a.get("expr", "") for a in annotations)


# ----------------------------------------------------------------------------- guard, selectors, policy
def settings(**cfg: Any) -> KubeSettings:
    return KubeSettings.from_configuration({"k8s_namespace": "sql-audit", "k8s_allowed_contexts": ["staging"],
                                            "k8s_allowed_namespaces": ["sql-audit"], **cfg})


@pytest.mark.parametrize(("name", "prod"), [("prod", True), ("gke_x_europe-west1_prod-eu", True),
                                            ("PRD", True), ("sql-audit-production", True), ("staging", False),
                                            ("product-catalog", False), ("prodigy", False)])
def test_production_names(name: str, prod: bool) -> None:
    assert looks_like_production(name) is prod


def test_guard() -> None:
    settings().guard("staging", "https://staging.example:6443", "t")
    with pytest.raises(ActivityFailed, match="k8s_allowed_contexts is empty"):
        settings(k8s_allowed_contexts=[]).guard("staging", "https://x", "t")
    with pytest.raises(ActivityFailed, match="not in k8s_allowed_contexts"):
        settings().guard("other", "https://x", "t")
    with pytest.raises(ActivityFailed, match=r"API server .* looks like production"):
        settings().guard("staging", "https://api.prod.example:6443", "t")
    settings(allow_production=True).guard("staging", "https://api.prod.example:6443", "t")
    with pytest.raises(ActivityFailed, match="namespace 'kafka-prod' is not in"):
        settings(k8s_kafka_namespace="kafka-prod").guard("staging", "https://x", "t")
    with pytest.raises(ActivityFailed, match="k8s_namespace is required"):
        KubeSettings.from_configuration({})


def test_label_selector_parsing() -> None:
    assert label_selector("app=x,role in (primary, master),!canary,tier!=db") == {
        "matchLabels": {"app": "x"},
        "matchExpressions": [{"key": "role", "operator": "In", "values": ["primary", "master"]},
                             {"key": "canary", "operator": "DoesNotExist"},
                             {"key": "tier", "operator": "NotIn", "values": ["db"]}]}
    with pytest.raises(ActivityFailed):
        label_selector("app=x,(")


def test_partition_policy_allows_everything_but_the_dependency() -> None:
    s = settings(k8s_kafka_selector="app=kafka,component=broker", k8s_kafka_cidrs="192.0.2.0/24")
    body = policy_body(s, s.edges["kafka"], "run-1", 0.0, ["10.244.0.7", "fd00::7"])
    peers = body["spec"]["egress"][0]["to"]
    not_in = [p["podSelector"]["matchExpressions"][0] for p in peers if "podSelector" in p]
    assert {(e["key"], e["values"][0]) for e in not_in} == {("app", "kafka"), ("component", "broker")}
    blocks = {p["ipBlock"]["cidr"]: p["ipBlock"].get("except") for p in peers if "ipBlock" in p}
    assert blocks == {"0.0.0.0/0": ["10.244.0.7/32", "192.0.2.0/24"], "::/0": ["fd00::7/128"]}
    assert body["metadata"]["labels"]["sql-audit-resilience/run-id"] == "run-1"


def test_the_backends_read_their_keys_from_the_target_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run on a cluster names the k8s_* keys only in the target file (Chaos Toolkit drops the keys an experiment
    does not declare): the backends' client must read them from there. The first pod_failure on the local
    cluster failed with "k8s_namespace is required" before this."""
    from faults.kubernetes.client import Kube

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sandbox",
        "clusters": [{"name": "sandbox", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "u"}}]}))
    target = tmp_path / "target.yaml"
    target.write_text(yaml.safe_dump({"target": "kubernetes", "k8s_kubeconfig": str(kubeconfig),
                                      "k8s_namespace": "sql-audit", "k8s_allowed_contexts": ["sandbox"],
                                      "k8s_allowed_namespaces": ["sql-audit"]}))
    monkeypatch.setenv("RESILIENCE_TARGET_CONFIG", str(target))
    with Kube({"target": "kubernetes"}, "test") as kube:
        assert kube.settings.namespace == "sql-audit"
        assert kube.context == "sandbox"
