"""The runner's overlay as ``cluster runner`` renders it (no cluster needed: kubectl kustomize only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster import ClusterSettings, runner, system
from cluster.install import Image, load_manifest, run_install

IMAGE = Image("runner", "localhost/sql-audit/runner:r1", Path("/nonexistent"))
# Keys the machine's target file has and the in-cluster one must not: the admin kubeconfig, and the node's network
# namespace (a pod cannot enter it).
MACHINE_ONLY = {"k8s_kubeconfig", "k8s_conntrack_netns"}
ENDPOINTS = {"prometheus_url", "kafka_bootstrap", "clickhouse_host", "clickhouse_port", "postgres_dsn",
             "replica_urls", "k8s_toxiproxy_urls", "k8s_in_cluster", "k8s_context", "k8s_allowed_contexts"}


@pytest.fixture(scope="module")
def settings() -> ClusterSettings:
    s = ClusterSettings.from_env(env={"RESILIENCE_DATA_ROOT": "/var/tmp/x"})
    run_install(s)  # cached: seconds; kubectl renders the overlay
    load_manifest(s)
    return s


@pytest.fixture(scope="module")
def docs(settings: ClusterSettings) -> list[dict[str, Any]]:
    return runner.render(settings, IMAGE)


def _kind(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name))


def test_the_in_cluster_target_file_has_the_machines_keys_with_in_cluster_endpoints(
        settings: ClusterSettings, docs: list[dict[str, Any]]) -> None:
    """The two target files describe one system: a key added to cluster/system.py's target_keys and not to
    deploy/k8s/local/runner/target.yaml (or the reverse) fails here."""
    machine = system.target_keys(settings)
    pod = yaml.safe_load(_kind(docs, "ConfigMap", "resilience-target")["data"]["target.yaml"])
    assert set(pod) == set(machine) - MACHINE_ONLY
    assert {k: v for k, v in pod.items() if k not in ENDPOINTS} == \
        {k: v for k, v in machine.items() if k not in ENDPOINTS | MACHINE_ONLY}
    assert pod["k8s_in_cluster"] is True and pod["k8s_allowed_namespaces"] == [system.NAMESPACE]
    assert all(".sql-audit.svc" in url for url in [*pod["replica_urls"], *pod["k8s_toxiproxy_urls"]])


def test_every_container_runs_the_runner_image_never_pulled(docs: list[dict[str, Any]]) -> None:
    containers = [c for d in docs for c in runner._containers(d)]
    assert len(containers) == 5  # the CronJob's and the gate Job's, each a cleanup and a runner; the sweeper
    assert {c["image"] for c in containers} == {IMAGE.ref}
    assert {c["imagePullPolicy"] for c in containers} == {"Never"}


def test_nothing_runs_by_itself_and_the_volume_is_the_nodes(docs: list[dict[str, Any]]) -> None:
    """Applying the overlay starts no run (a gate that started by itself ran the whole catalogue once, 2026-12-03):
    the CronJob and the gate Job are suspended; the claim binds to the hostPath volume by name."""
    assert _kind(docs, "CronJob", "resilience-nightly")["spec"]["suspend"] is True
    assert _kind(docs, "Job", "resilience-gate")["spec"]["suspend"] is True
    claim = _kind(docs, "PersistentVolumeClaim", "resilience-data")["spec"]
    volume = _kind(docs, "PersistentVolume", "resilience-data")["spec"]
    assert claim["volumeName"] == "resilience-data" and claim["storageClassName"] == volume["storageClassName"] == ""
    assert volume["hostPath"]["path"] == "/var/lib/sql-audit-data/resilience-data"


def test_the_runners_pods_reach_every_store_and_the_service(docs: list[dict[str, Any]]) -> None:
    policy = _kind(docs, "NetworkPolicy", "resilience-runner")["spec"]
    selected = set(policy["podSelector"]["matchExpressions"][0]["values"])
    assert selected == {"kafka", "postgres", "clickhouse", "prometheus", "sql-audit-service"}
    peers = policy["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
    cronjob = _kind(docs, "CronJob", "resilience-nightly")["spec"]["jobTemplate"]["spec"]["template"]
    gate = _kind(docs, "Job", "resilience-gate")["spec"]["template"]
    assert {cronjob["metadata"]["labels"]["app.kubernetes.io/component"],
            gate["metadata"]["labels"]["app.kubernetes.io/component"]} == set(peers)


def test_the_sweeper_runs_and_needs_nothing_but_the_api_server(docs: list[dict[str, Any]]) -> None:
    """The sweeper is applied running (one replica; it reverts only what expired), with the runner image, its own
    component (not a run: `cluster job` does not wait for it, the stores' policy does not admit it) and no policy
    of the overlay restricting its egress (the namespace's default deny is ingress only: system/)."""
    sweeper = _kind(docs, "Deployment", "resilience-sweeper")
    pod = sweeper["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert sweeper["spec"]["replicas"] == 1 and "paused" not in sweeper["spec"]
    assert container["command"] == ["python", "-m", "faults.cli", "sweep", "--every", "30"]
    assert container["image"] == IMAGE.ref
    assert pod["metadata"]["labels"][runner.COMPONENT] == "sweeper"
    policy = _kind(docs, "NetworkPolicy", "resilience-runner")["spec"]
    assert "sweeper" not in policy["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
    assert all("Egress" not in d["spec"].get("policyTypes", []) for d in docs if d["kind"] == "NetworkPolicy")
    system = [d for path in sorted((runner.REPO_ROOT / "deploy/k8s/local/system").glob("*.yaml"))
              for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and d.get("kind") == "NetworkPolicy"]
    assert any(d["metadata"]["name"] == "default-deny-ingress" for d in system)
    assert all("Egress" not in d["spec"].get("policyTypes", []) for d in system)


def test_a_job_is_the_cronjobs_template_with_other_arguments(docs: list[dict[str, Any]]) -> None:
    cronjob = _kind(docs, "CronJob", "resilience-nightly")
    job = runner.job_body(cronjob, "resilience-run-x", ["run", "pod_failure"])
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["run", "pod_failure"]
    assert job["spec"]["template"]["spec"]["initContainers"] == template["spec"]["initContainers"]
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "sql-audit-resilience"
    assert template["spec"]["containers"][0]["args"][:2] == ["run", "pod_failure"]  # the CronJob's own: unchanged


def test_logs_read_the_containers_that_started_while_the_runner_still_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``kubectl logs --all-containers`` answers only "container runner is waiting to start" between the cleanup
    container's end and the runner's start: the cleanup's log (what the CI run of 11ed5f9 needed) was lost."""
    pod = {"metadata": {"name": "resilience-run-1-abc"},
           "status": {"initContainerStatuses": [{"name": "cleanup", "state": {"terminated": {"exitCode": 3}}}],
                      "containerStatuses": [{"name": "runner", "state": {"waiting": {"reason": "PodInitializing"}}}]}}
    asked: list[list[str]] = []

    def kubectl_logs(cmd: list[str], **_: Any) -> Any:  # as kubectl answers while the runner waits
        asked.append(cmd)
        if "--all-containers" in cmd or cmd[-2:] == ["runner", "--prefix"]:
            return type("Done", (), {"stdout": "", "stderr": 'Error from server (BadRequest): container "runner" in '
                                     'pod "resilience-run-1-abc" is waiting to start: PodInitializing\n'})()
        return type("Done", (), {"stdout": "[pod/resilience-run-1-abc/cleanup] AT WORK\n", "stderr": ""})()

    monkeypatch.setattr(runner, "job_pod", lambda _settings, _name: pod)
    monkeypatch.setattr(runner, "kubectl", lambda _settings: ["kubectl"])
    monkeypatch.setattr(runner.proc, "run", kubectl_logs)
    log = runner.logs(ClusterSettings.from_env(env={"RESILIENCE_DATA_ROOT": "/var/tmp/x"}), "resilience-run-1")
    assert "AT WORK" in log and "[runner] not started: PodInitializing" in log
    assert [cmd[cmd.index("-c") + 1] for cmd in asked] == ["cleanup"]
