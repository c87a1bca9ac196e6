"""The suite's runner inside the cluster (marker ``k8s_cluster``): deploy/k8s/base with the image built here.

``cluster runner`` applies deploy/k8s/local/runner/ (ServiceAccount, Role, the CronJob, the gate Job, the report
volume); each run here is a Job of the CronJob's own template, so the pod runs as the nightly run would: as user
10001 on a read-only root, with the ServiceAccount's token and nothing of the machine's, its journal and reports
on the volume. What is checked cannot pass by accident:

- the run judged in the pod killed a real pod through the ServiceAccount (exactly one service pod replaced, the
  runner's log names the in-cluster context), and its verdicts are on the volume with the exit code they imply;
- the Role is least privilege: the ServiceAccount's own token is refused what the suite never does (secrets,
  other namespaces, creating pods, deleting sets, granting itself more), and allowed what it does (else the
  refusals could come from a bad token);
- a runner pod SIGKILLed during a NetworkPolicy partition (every process of the container at once, the watchdog
  included: it lives in the same pod) leaves the policy behind, and the next run's cleanup container, reading the
  dead run's journal on the volume, deletes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from cluster import ClusterError, proc, runner, system
from tests.cluster.conftest import TEST_DEFAULTS, ClusterUnderTest, lasting_experiment, service_pods

pytestmark = [pytest.mark.k8s_cluster]

POD_REPORTS = "/var/lib/resilience/reports"
POD_DATA = "/var/lib/resilience"
EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 2}


def _say(step: str, detail: str) -> None:
    print(f"  {step}: {detail}")


@pytest.fixture
def runner_on(cluster_up: ClusterUnderTest) -> ClusterUnderTest:
    """The system under test and the runner's objects on the session's cluster."""
    system.deploy(cluster_up.settings, progress=_say)
    runner.deploy_runner(cluster_up.settings, progress=_say)
    return cluster_up


def _reports(settings: Any) -> set[Path]:
    return set((runner.data_dir(settings) / "reports").glob("*-*"))


@pytest.mark.extended
def test_the_runner_pod_judges_pod_failure_through_its_service_account(runner_on: ClusterUnderTest,
                                                                        kube: kubernetes.client.ApiClient) -> None:
    settings = runner_on.settings
    before, reports = service_pods(kube), _reports(settings)
    assert len(before) == 3, before
    # the command an SRE types: the Job made, its logs followed, its exit code the runner's
    done = subprocess.run([sys.executable, "-m", "cluster", "job", "--state-dir", str(settings.state_dir), "--",
                           "run", "pod_failure", "--target", "kubernetes", "--rate", "50", "--duration", "75",
                           "--reports-dir", POD_REPORTS], capture_output=True, text=True, timeout=600, check=False,
                          env={**TEST_DEFAULTS, **os.environ})
    code, log = done.returncode, done.stdout
    print(log[-4000:], done.stderr[-1000:])
    assert "/cleanup] " in log and "/runner] " in log, done.stderr[-2000:]
    new = sorted(_reports(settings) - reports)
    assert len(new) == 1 and new[0].name.endswith("-pod_failure"), (code, new)
    summary = json.loads((new[0] / "summary.json").read_text())
    verdicts = {v["slo"]: v for v in summary["verdicts"]}
    print({k: (v["outcome"], v.get("measured")) for k, v in verdicts.items()})
    assert code == EXIT_CODES[summary["outcome"]], (code, summary["outcome"])
    assert verdicts["fault_effect:replicas_ready"]["outcome"] == "pass", verdicts["fault_effect:replicas_ready"]
    assert verdicts["rto_replicas_ready"]["outcome"] in ("pass", "fail"), verdicts["rto_replicas_ready"]
    assert verdicts["data_loss"]["outcome"] == "pass", verdicts["data_loss"]
    assert verdicts["residue"]["outcome"] == "pass", verdicts["residue"]
    assert (new[0] / "report.html").is_file()
    # the kill went through the pod's ServiceAccount (in-cluster configuration), not an admin credential
    assert "DELETE /api/v1/namespaces/sql-audit/pods/sql-audit-service-" in log and "on context in-cluster" in log
    after = service_pods(kube)
    assert len([n for n, uid in before.items() if after.get(n) != uid]) == 1, (before, after)


def _as_service_account(kube: kubernetes.client.ApiClient) -> kubernetes.client.ApiClient:
    """An API client holding a fresh token of the runner's ServiceAccount (TokenRequest), nothing else."""
    token = kubernetes.client.CoreV1Api(kube).create_namespaced_service_account_token(
        "sql-audit-resilience", system.NAMESPACE, {"spec": {"expirationSeconds": 600}}, _request_timeout=10)
    config = kubernetes.client.Configuration()
    config.host = kube.configuration.host
    config.ssl_ca_cert = kube.configuration.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token.status.token}"}
    return kubernetes.client.ApiClient(config)


def _status(call: Any) -> int:
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def test_the_runners_role_allows_what_the_suite_does_and_nothing_else(runner_on: ClusterUnderTest,
                                                                      kube: kubernetes.client.ApiClient) -> None:
    ns, timeout = system.NAMESPACE, 10
    with contextlib.closing(_as_service_account(kube)) as sa:
        core, apps = kubernetes.client.CoreV1Api(sa), kubernetes.client.AppsV1Api(sa)
        net, rbac = kubernetes.client.NetworkingV1Api(sa), kubernetes.client.RbacAuthorizationV1Api(sa)
        allowed = {
            "list pods": lambda: core.list_namespaced_pod(ns, _request_timeout=timeout),
            "get statefulset": lambda: apps.read_namespaced_stateful_set("sql-audit-service", ns,
                                                                         _request_timeout=timeout),
            "list networkpolicies": lambda: net.list_namespaced_network_policy(ns, _request_timeout=timeout),
            "get the kill-switch configmap": lambda: core.read_namespaced_config_map(
                "sql-audit-resilience-control", ns, _request_timeout=timeout),
        }
        pod = {"metadata": {"name": "sar-denied"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
        binding = {"metadata": {"name": "sar-denied"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                   "subjects": [{"kind": "ServiceAccount", "name": "sql-audit-resilience", "namespace": ns}]}
        # dry_run where the call would change something if it were allowed: authorization comes first
        denied = {
            "read secrets": lambda: core.list_namespaced_secret(ns, _request_timeout=timeout),
            "list pods in kube-system": lambda: core.list_namespaced_pod("kube-system", _request_timeout=timeout),
            "delete a pod in kube-system": lambda: core.delete_namespaced_pod(
                "coredns-0", "kube-system", dry_run="All", _request_timeout=timeout),
            "create a pod": lambda: core.create_namespaced_pod(ns, pod, dry_run="All", _request_timeout=timeout),
            "delete a statefulset": lambda: apps.delete_namespaced_stateful_set(
                "postgres", ns, dry_run="All", _request_timeout=timeout),
            "read nodes": lambda: core.list_node(_request_timeout=timeout),
            "grant itself admin": lambda: rbac.create_namespaced_role_binding(ns, binding, dry_run="All",
                                                                              _request_timeout=timeout),
        }
        got = {what: _status(call) for what, call in {**allowed, **denied}.items()}
    print(got)
    assert {w: got[w] for w in allowed} == dict.fromkeys(allowed, 200)
    assert {w: got[w] for w in denied} == dict.fromkeys(denied, 403)


def _container_pids(container_id: str) -> list[int]:
    """Pids of the machine whose cgroup is the container's (the kubelet names it by the container's ID)."""
    pids = []
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if container_id in (proc_dir / "cgroup").read_text():
                pids.append(int(proc_dir.name))
    return pids


def _partition_policies(kube: kubernetes.client.ApiClient) -> list[str]:
    items = kubernetes.client.NetworkingV1Api(kube).list_namespaced_network_policy(
        system.NAMESPACE, label_selector="app.kubernetes.io/managed-by=sql-audit-resilience",
        _request_timeout=10).items
    return [p.metadata.name for p in items]


@contextlib.contextmanager
def _lasting_partition(settings: Any) -> Iterator[tuple[str, Path]]:
    """A Job running clickhouse_partition with its partition made to last 15 minutes, from a copy of the
    experiment on the volume; yields the Job's name and the journal directory once the partition is journaled.
    Whatever happened, the Job is deleted and a cleanup Job runs after."""
    volume = runner.data_dir(settings)
    (volume / "experiments").mkdir(exist_ok=True)
    path = volume / "experiments" / "clickhouse_partition-lasting.yaml"
    path.write_text(lasting_experiment("clickhouse_partition", "partition_network"))
    for p in (path.parent, path):
        os.chown(p, runner.RUNNER_UID, runner.RUNNER_UID)
    name = runner.start_job(settings, ["run", f"{POD_DATA}/experiments/{path.name}", "--target", "kubernetes",
                                       "--rate", "20", "--reports-dir", POD_REPORTS])
    state = volume / "faults"
    try:
        yield name, state
    finally:
        proc.run([*system.kubectl(settings), "-n", system.NAMESPACE, "delete", "job", name,
                         "--grace-period=0", "--wait=true"], timeout=120, check=False)
        runner.wait_job(settings, runner.start_job(settings, ["cleanup", "--all"]), progress=_say, timeout=300)


def _active(state: Path) -> list[dict[str, Any]]:
    from faults import journal

    return [e for _, e in journal.entries(state) if e.get("status") == "active"]


def test_a_runner_pod_killed_during_a_partition_is_healed_by_the_next_runs_cleanup(
        runner_on: ClusterUnderTest, kube: kubernetes.client.ApiClient) -> None:
    settings = runner_on.settings
    assert not _partition_policies(kube)
    with _lasting_partition(settings) as (name, state):
        deadline = time.monotonic() + 300
        while not (_active(state) and _partition_policies(kube)) and time.monotonic() < deadline:
            assert runner.exit_code(runner.job_pod(settings, name)) is None, runner.logs(settings, name)[-3000:]
            time.sleep(1)
        assert _active(state) and _partition_policies(kube), runner.logs(settings, name)[-3000:]
        # a second run now would revert this one's fault in its cleanup container: refused, naming the pod
        with pytest.raises(ClusterError, match=f"a run is going on in sql-audit \\(pods {name}-"):
            runner.start_job(settings, ["cleanup", "--all"])
        # ... and a Job made without `cluster job` (kubectl create, a CronJob firing): its cleanup container tells
        # the live run in the other pod by its heartbeat (its pid 1 is not ours), leaves it alone, and exits 3
        second = f"{name}-second"
        cronjob = system.get_object(settings, "cronjob", runner.CRONJOB) or {}
        proc.run([*system.kubectl(settings), "create", "-f", "-"], timeout=30,
                 input=json.dumps(runner.job_body(cronjob, second, ["cleanup", "--all"])))
        try:
            deadline = time.monotonic() + 120
            while runner.exit_code(runner.job_pod(settings, second), "cleanup") is None and time.monotonic() < deadline:
                time.sleep(1)
            log = runner.logs(settings, second)
            print(log[-1500:])
            assert runner.exit_code(runner.job_pod(settings, second), "cleanup") == 3, log[-3000:]
            assert "AT WORK" in log and "another pid namespace" in log, log[-3000:]
            assert _partition_policies(kube) and _active(state), "the second cleanup reverted the live run's fault"
            assert runner.exit_code(runner.job_pod(settings, name)) is None, "the first run ended meanwhile"
        finally:
            proc.run([*system.kubectl(settings), "-n", system.NAMESPACE, "delete", "job", second, "--wait=true"],
                     timeout=120, check=False)
        pod = runner.job_pod(settings, name)
        assert pod is not None
        container = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "runner")
        pids = _container_pids(container["containerID"].split("://", 1)[1])
        assert len(pids) >= 3, pids  # the runner, its watchdog, the load
        for pid in pids:  # the whole container at once: nothing of the run can undo its fault
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while runner.exit_code(runner.job_pod(settings, name)) is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert runner.exit_code(runner.job_pod(settings, name)) == 137
        left = _partition_policies(kube)
        assert left and _active(state), "the kill left no fault behind: the test would prove nothing"
        print(f"left by the killed runner: {left}")

        t0 = time.monotonic()
        healer = runner.start_job(settings, ["cleanup", "--all"])
        code = runner.wait_job(settings, healer, progress=_say, timeout=300)
        log = runner.logs(settings, healer)
        print(log[-2000:])
        print(f"healed by the next run's cleanup container {time.monotonic() - t0:.1f} s after its Job was created")
        assert code == 0
        assert not _partition_policies(kube), log
        assert not _active(state)
        assert "[pod/" in log and "/cleanup]" in log


@pytest.mark.extended
def test_the_sweeper_pod_reverts_what_expired_and_nothing_else(runner_on: ClusterUnderTest,
                                                                 kube: kubernetes.client.ApiClient) -> None:
    """What a killed runner pod leaves, as it leaves it: a partition policy and a held StatefulSet whose expiry has
    passed (written here as the library writes them). The sweeper Deployment (deploy/k8s/base, every 30 s, the
    runner's ServiceAccount) must delete the policy and scale the set back, and leave alone a policy whose expiry
    is to come."""
    from faults.kubernetes import LABEL_PREFIX, MANAGED_BY
    from faults.kubernetes.expiry import EXPIRES
    from faults.kubernetes.hold import BEFORE, HELD_BY
    from faults.kubernetes.network_partition import FAULT

    settings, ns = runner_on.settings, system.NAMESPACE
    net, apps = kubernetes.client.NetworkingV1Api(kube), kubernetes.client.AppsV1Api(kube)

    def stamp(offset: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))

    def policy(name: str, edge: str, offset: float) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGED_BY,
                                                      f"{LABEL_PREFIX}/fault": FAULT, f"{LABEL_PREFIX}/edge": edge},
                             "annotations": {EXPIRES: stamp(offset)}},
                "spec": {"podSelector": {"matchLabels": {"app": "sql-audit-service"}}, "policyTypes": ["Egress"],
                         "egress": [{}]}}  # allows all: the service goes on, the object is what is judged

    assert len(service_pods(kube, "app.kubernetes.io/component=sweeper")) == 1
    net.create_namespaced_network_policy(ns, policy("chaos-partition-expired", "clickhouse", -60), _request_timeout=10)
    net.create_namespaced_network_policy(ns, policy("chaos-partition-fresh", "postgres", 600), _request_timeout=10)
    apps.patch_namespaced_stateful_set("sql-audit-service", ns, {
        "metadata": {"annotations": {BEFORE: "3", HELD_BY: "test", EXPIRES: stamp(-60)}}, "spec": {"replicas": 2}},
        _request_timeout=10)
    t0 = time.monotonic()
    try:
        deadline = t0 + 120
        while time.monotonic() < deadline:
            sts = apps.read_namespaced_stateful_set("sql-audit-service", ns, _request_timeout=10)
            if "chaos-partition-expired" not in _partition_policies(kube) and sts.spec.replicas == 3:
                break
            time.sleep(1)
        print(f"swept {time.monotonic() - t0:.1f} s after the expired objects were written")
        print(proc.run([*system.kubectl(settings), "-n", ns, "logs", "deploy/resilience-sweeper", "--tail", "20"],
                       timeout=30, check=False).stdout)
        assert "chaos-partition-expired" not in _partition_policies(kube), "the expired policy is still there"
        sts = apps.read_namespaced_stateful_set("sql-audit-service", ns, _request_timeout=10)
        assert sts.spec.replicas == 3 and not {BEFORE, HELD_BY, EXPIRES} & set(sts.metadata.annotations or {})
        assert "chaos-partition-fresh" in _partition_policies(kube), "the sweeper deleted a policy not yet expired"
    finally:
        for name in ("chaos-partition-expired", "chaos-partition-fresh"):
            with contextlib.suppress(ApiException):
                net.delete_namespaced_network_policy(name, ns, _request_timeout=10)
        apps.patch_namespaced_stateful_set("sql-audit-service", ns, {"metadata": {"annotations": {
            BEFORE: None, HELD_BY: None, EXPIRES: None}}, "spec": {"replicas": 3}}, _request_timeout=10)
