"""The system under test on the local cluster: ``cluster deploy | undeploy`` (deploy/k8s/local/system/).

:func:`deploy` imports the system's images (deploy/k8s/local/images.sh, listed in ``local-system.json``)
into the node's containerd, renders the kustomize overlay with the pinned kubectl, puts in the images'
references and one NetworkPolicy whose ranges are the cluster's own (:func:`node_policy`), applies it
and waits until the bootstrap Job has finished and every StatefulSet is Ready. It then writes the
target file for ``resilience run --target kubernetes`` (:func:`target_keys`): the runner stays on the
machine and reaches the cluster through the API server's loopback forward and NodePorts on the node IP
(the machine's end of the veth routes to it), so nothing has to be built into a runner image.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml

from cluster import proc
from cluster.configs import Paths
from cluster.errors import ClusterError, MissingToolError
from cluster.images import Images
from cluster.install import Image, load_manifest
from cluster.netns import NodeNamespaces
from cluster.settings import REPO_ROOT, ClusterSettings

logger = logging.getLogger(__name__)

SYSTEM_DIR = REPO_ROOT / "deploy" / "k8s" / "local" / "system"
IMAGES_SCRIPT = REPO_ROOT / "deploy" / "k8s" / "local" / "images.sh"
NAMESPACE = "sql-audit"
SYSTEM_IMAGES = ("platform", "patroni", "service")
# ... and of the cluster's own install (local-cluster.json) that the system runs: kube-state-metrics beside Prometheus.
CLUSTER_IMAGES = ("kube-state-metrics",)
# Image names in the manifests -> which built image replaces them.
IMAGE_NAMES = {"sql-audit-platform": "platform", "sql-audit-patroni": "patroni", "sql-audit-service": "service",
               "sql-audit-resilience": "service", "kube-state-metrics": "kube-state-metrics"}
STATEFULSETS = ("kafka", "postgres", "zookeeper", "clickhouse", "prometheus", "sql-audit-service")
BOOTSTRAP_JOB = "sql-audit-bootstrap"
# The runner's report volume (cluster/runner.py): cluster-scoped, so `undeploy` deletes it beside the namespace.
RUNNER_VOLUME = "resilience-data"
# NodePorts of deploy/k8s/local/system/*.yaml: how the machine reaches the stores and Prometheus.
NODE_PORTS = {"kafka": 30092, "postgres": 30432, "clickhouse": 30900, "prometheus": 30090}
# Each service replica's HTTP port, one NodePort Service per pod (deploy/k8s/local/system/replica-services.yaml).
REPLICA_NODE_PORTS = (30080, 30081, 30082)
# ... and each replica's toxiproxy sidecar (service-patch.yaml): where latency and loss faults put their toxics.
TOXIPROXY_NODE_PORTS = (30474, 30475, 30476)
IMAGES_HINT = "run `bash deploy/k8s/local/images.sh` (or `python -m cluster install`)"

Progress = Callable[[str, str], None]


def system_manifest_path(settings: ClusterSettings) -> Path:
    return settings.cache_dir / "local-system.json"


def load_system_images(settings: ClusterSettings, names: tuple[str, ...] = SYSTEM_IMAGES) -> dict[str, Image]:
    """The images ``names`` from ``local-system.json``; :class:`MissingToolError` when one is not built."""
    path = system_manifest_path(settings)
    try:
        raw = json.loads(path.read_text())
        images = {n: Image(n, str(raw["images"][n]["ref"]), Path(raw["images"][n]["archive"])) for n in names}
    except FileNotFoundError:
        raise MissingToolError(f"no system image manifest at {path}: {IMAGES_HINT}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MissingToolError(f"{path}: unreadable or incomplete ({exc}): {IMAGES_HINT}") from None
    missing = [f"{i.name} ({i.archive})" for i in images.values() if not i.archive.is_file()]
    if missing:
        raise MissingToolError(f"system images not built: {', '.join(missing)}: {IMAGES_HINT}")
    return images


def node_policy(settings: ClusterSettings) -> dict[str, Any]:
    """Ingress from the node's range and the pods' gateway to the stores, the service and Prometheus.

    The kubelet probes pods from the node (through ``cni0``: the gateway's address), and the runner on the
    machine comes in through the NodePorts (kube-proxy masquerades it to the gateway's address too)."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "from-the-node", "namespace": NAMESPACE},
        "spec": {"podSelector": {"matchExpressions": [
                     {"key": "app", "operator": "In",
                      "values": ["kafka", "postgres", "zookeeper", "clickhouse", "prometheus",
                                 "sql-audit-service"]}]},
                 "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"ipBlock": {"cidr": settings.node_cidr}},
                                       {"ipBlock": {"cidr": f"{settings.pod_gateway}/32"}}]}]},
    }


def render(settings: ClusterSettings, images: dict[str, Image]) -> list[dict[str, Any]]:
    """The overlay's objects with the images' references and :func:`node_policy` (nothing applied)."""
    manifest = load_manifest(settings)
    out = proc.run([manifest.binary("kubectl"), "kustomize", str(SYSTEM_DIR)], timeout=60).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            name = str(container.get("image", "")).split(":", 1)[0]
            if name not in IMAGE_NAMES:
                raise ClusterError(f"{SYSTEM_DIR}: {doc['kind']}/{doc['metadata']['name']} container "
                                   f"{container.get('name')}: image {container.get('image')!r} is none of "
                                   f"{sorted(IMAGE_NAMES)} (only images built here can run)")
            container["image"] = images[IMAGE_NAMES[name]].ref
            container["imagePullPolicy"] = "Never"
    docs.append(node_policy(settings))
    return docs


def kubectl(settings: ClusterSettings) -> list[str]:
    return [load_manifest(settings).binary("kubectl"), "--kubeconfig", str(settings.admin_kubeconfig)]


def wait_until(what: str, check: Callable[[], str | None], deadline: float, progress: Progress) -> None:
    """Poll ``check`` (``None``: done, else what it waits for) until done or the deadline."""
    last = ""
    while True:
        pending = check()
        if pending is None:
            progress(what, "ready")
            return
        if pending != last:
            progress(what, pending)
            last = pending
        if time.monotonic() > deadline:
            raise ClusterError(f"{what}: not ready in time: {pending}")
        time.sleep(1)


def get_object(settings: ClusterSettings, kind: str, name: str) -> dict[str, Any] | None:
    res = proc.run([*kubectl(settings), "-n", NAMESPACE, "get", kind, name, "-o", "json"], timeout=30, check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def _sts_pending(settings: ClusterSettings, name: str) -> str | None:
    sts = get_object(settings, "statefulset", name)
    if sts is None:
        return "not created"
    want = sts["spec"].get("replicas", 1)
    status = sts.get("status", {})
    ready = status.get("readyReplicas", 0)
    if ready >= want and status.get("updatedReplicas", 0) >= want:
        return None
    _replace_stuck_pods(settings, sts)
    return f"{ready}/{want} ready, {status.get('updatedReplicas', 0)} updated"


def _replace_stuck_pods(settings: ClusterSettings, sts: dict[str, Any]) -> None:
    """Delete the StatefulSet's pods of an old revision that are not ready.

    The StatefulSet controller does not replace a pod that never became ready (a crash loop of a broken
    revision) with the new revision by itself (Kubernetes' documented "forced rollback"): a redeploy that
    fixes it would otherwise wait forever."""
    update = sts.get("status", {}).get("updateRevision")
    labels = ",".join(f"{k}={v}" for k, v in sts["spec"]["selector"]["matchLabels"].items())
    res = proc.run([*kubectl(settings), "-n", NAMESPACE, "get", "pods", "-l", labels, "-o", "json"], timeout=30)
    for pod in json.loads(res.stdout)["items"]:
        revision = pod["metadata"].get("labels", {}).get("controller-revision-hash")
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in pod.get("status", {}).get("conditions", []))
        if update and revision != update and not ready and not pod["metadata"].get("deletionTimestamp"):
            proc.run([*kubectl(settings), "-n", NAMESPACE, "delete", "pod", pod["metadata"]["name"], "--wait=false"],
                     timeout=30, check=False)


def job_failure(job: dict[str, Any] | None) -> str | None:
    """The message of the Job's ``Failed`` condition, ``None`` while it has not failed (or does not exist)."""
    for cond in (job or {}).get("status", {}).get("conditions", []):
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return str(cond.get("message"))
    return None


def _job_pending(settings: ClusterSettings, name: str) -> str | None:
    job = get_object(settings, "job", name)
    if job is None:
        return "not created"
    status = job.get("status", {})
    if status.get("succeeded"):
        return None
    failure = job_failure(job)
    if failure is not None:
        raise ClusterError(f"job {name} failed: {failure} (kubectl -n {NAMESPACE} logs job/{name})")
    return f"running ({status.get('failed', 0)} failed attempts)"


def _first_batch_pending(settings: ClusterSettings) -> str | None:
    """``None`` once Prometheus has the service's checker series (made by its first batch: the bootstrap Job's
    warm-up event); a run refuses to start while a series it reads does not exist."""
    url = f"http://{settings.node_ip}:{NODE_PORTS['prometheus']}/api/v1/query"
    query = f'sum(sqlaudit_checker_duration_seconds_count{{namespace="{NAMESPACE}"}})'
    try:
        res = requests.get(url, params={"query": query}, timeout=5)
        res.raise_for_status()
        result = res.json()["data"]["result"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        return f"Prometheus at {url}: {exc}"
    return None if result and float(result[0]["value"][1]) > 0 else "no checker series yet"


def deploy(settings: ClusterSettings, progress: Progress, timeout: float = 600) -> Path:
    """Put the system under test on the running cluster and wait Ready; returns the target file written.

    Raises :class:`MissingToolError` when an image is not built, :class:`ClusterError` when the cluster
    is not up or something does not become ready within ``timeout`` seconds (naming it).
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    manifest = load_manifest(settings)
    images = {**load_system_images(settings), **{n: manifest.images[n] for n in CLUSTER_IMAGES}}
    if not settings.admin_kubeconfig.is_file():
        raise ClusterError(f"no cluster at {settings.state_dir}: run `python -m cluster up` first")
    imported = Images(manifest, Paths(settings).containerd_sock, images).import_missing()
    progress("images", f"imported {', '.join(imported)}" if imported else "present")
    docs = render(settings, images)
    _apply(settings, docs)
    progress("apply", f"{len(docs)} objects in namespace {NAMESPACE}")
    wait_until(f"job/{BOOTSTRAP_JOB}", lambda: _job_pending(settings, BOOTSTRAP_JOB), deadline, progress)
    for name in STATEFULSETS:
        wait_until(f"statefulset/{name}", functools.partial(_sts_pending, settings, name), deadline, progress)
    try:
        wait_until("first batch processed", functools.partial(_first_batch_pending, settings),
              min(deadline, time.monotonic() + FIRST_BATCH_GRACE_S), progress)
    except ClusterError:
        # The service's pods rolled after the Job's warm-up event, so the old pods consumed it and the new ones
        # have no checker series yet (a redeploy with a changed service image, 2026-12-02): run the Job again
        # (every step of it is idempotent) for one more warm-up event.
        progress("first batch processed", "the pods rolled after the warm-up event: bootstrap Job again")
        _apply(settings, [d for d in docs if d["kind"] == "Job"])
        wait_until(f"job/{BOOTSTRAP_JOB}", lambda: _job_pending(settings, BOOTSTRAP_JOB), deadline, progress)
        wait_until("first batch processed", functools.partial(_first_batch_pending, settings), deadline, progress)
    path = write_target_file(settings)
    progress("target file", str(path))
    progress("deployed", f"in {time.monotonic() - t0:.1f} s")
    return path


FIRST_BATCH_GRACE_S = 30.0
"""How long the service may take to process the bootstrap Job's warm-up event before the Job runs again."""


def _replaced_statefulsets(settings: ClusterSettings, docs: list[dict[str, Any]]) -> list[str]:
    """The StatefulSets of ``docs`` whose running object differs in a field the API server refuses to change
    (``podManagementPolicy``, ``serviceName``: the two our manifests have changed; apply fails "field is
    immutable"): they must be deleted before the apply (one Kafka broker, OrderedReady, redeployed as three in
    Parallel)."""
    res = proc.run([*kubectl(settings), "-n", NAMESPACE, "get", "statefulsets", "-o", "json"], timeout=30)
    live = {s["metadata"]["name"]: s["spec"] for s in json.loads(res.stdout)["items"]}
    changed = []
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc["kind"] != "StatefulSet" or name not in live:
            continue
        want = {"podManagementPolicy": "OrderedReady", **doc["spec"]}
        if any(f in want and want[f] != live[name].get(f) for f in ("podManagementPolicy", "serviceName")):
            changed.append(name)
    return changed


def _apply(settings: ClusterSettings, docs: list[dict[str, Any]]) -> None:
    """Apply ``docs`` server-side, the bootstrap Job deleted first (a Job's template is immutable, and a
    completed Job does not run again), and a StatefulSet whose immutable fields changed deleted first too
    (:func:`_replaced_statefulsets`): its pods go, their hostPath data stays."""
    proc.run([*kubectl(settings), "-n", NAMESPACE, "delete", "job", BOOTSTRAP_JOB, "--ignore-not-found",
              "--wait=true"], timeout=60, check=False)
    for name in _replaced_statefulsets(settings, docs):
        logger.info("statefulset/%s: an immutable field changed: deleting it before the apply", name)
        proc.run([*kubectl(settings), "-n", NAMESPACE, "delete", "statefulset", name, "--wait=true"], timeout=120)
    proc.run([*kubectl(settings), "apply", "--server-side", "--force-conflicts", "--field-manager",
              "sql-audit-system", "-f", "-"], input=yaml.safe_dump_all(docs, sort_keys=False), timeout=120)


def undeploy(settings: ClusterSettings, progress: Progress, timeout: float = 180) -> None:
    """Delete the namespace (every object of the system) and wait until it is gone."""
    proc.run([*kubectl(settings), "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true",
              f"--timeout={int(timeout)}s"], timeout=timeout + 30)
    # the runner's report volume is not namespaced; its directory stays (down --purge removes it)
    proc.run([*kubectl(settings), "delete", "pv", RUNNER_VOLUME, "--ignore-not-found"], timeout=60)
    progress("undeploy", f"namespace {NAMESPACE} deleted")


def target_keys(settings: ClusterSettings) -> dict[str, Any]:
    """The target file of this cluster's system for ``resilience run --target kubernetes`` (docs/cluster.md).

    The kubeconfig is the admin one (the loopback forward of the API server); the context is the cluster's
    name, the only one allow-listed. Endpoints are the NodePorts on the node IP.
    """
    node = settings.node_ip
    return {
        "target": "kubernetes",
        "k8s_kubeconfig": str(settings.admin_kubeconfig),
        "k8s_context": settings.name,
        "k8s_in_cluster": False,
        "k8s_namespace": NAMESPACE,
        "k8s_allowed_contexts": [settings.name],
        "k8s_allowed_namespaces": [NAMESPACE],
        "k8s_service_selector": "app=sql-audit-service",
        "k8s_service_statefulset": "sql-audit-service",
        "k8s_expected_replicas": 3,
        "expected_replicas": 3,
        "k8s_kafka_selector": "app=kafka",
        "k8s_postgres_selector": "app=postgres",
        "k8s_postgres_leader_selector": "app=postgres,role in (primary,master)",
        # Patroni's two members (postgres.yaml): switchover through the leader pod's own patronictl
        "k8s_postgres_container": "postgres",
        "k8s_patronictl": ["patronictl", "-c", "/etc/patroni/patroni.yml"],
        "k8s_clickhouse_selector": "app=clickhouse",
        "k8s_clickhouse_statefulset": "clickhouse",
        "k8s_clickhouse_container": "clickhouse",
        # a partition policy must be seen to cut new connections from a service pod (the image has python3)
        "k8s_partition_check": True,
        # ... and the established connections too: the runner is on the node's machine, so the partition deletes
        # the tracked flows of the cut pods in the node's namespace (kube-router accepts ESTABLISHED before policy)
        "k8s_conntrack_netns": str(NodeNamespaces(settings).net),
        "prometheus_url": f"http://{node}:{NODE_PORTS['prometheus']}",
        "kafka_bootstrap": f"{node}:{NODE_PORTS['kafka']}",
        "clickhouse_host": node,
        "clickhouse_port": NODE_PORTS["clickhouse"],
        "postgres_dsn": f"postgresql://sqlaudit@{node}:{NODE_PORTS['postgres']}/sqlaudit",
        # Readiness as the kubelet wrote it into the pods' status (kube-state-metrics beside Prometheus), lag from
        # the lag exporter (kafka_exporter's names), the rest from the service's own series.
        # local-kubelet first: it reads the same series as the last sample of 1.5 s, so one scrape the busy
        # machine did not finish in time (Prometheus marks the series stale at once) is not read as "no replica
        # ready" (a run with the plain kubernetes profile scored availability 97 % and pdb_min_available 0 from
        # two such gaps while the kubelet had 2 pods Ready throughout).
        "metric_profiles": ["local-kubelet", "kubernetes", "python-reference"],
        "metric_selector": f'namespace="{NAMESPACE}", app="sql-audit-service"',
        # every replica's own HTTP port, for the probes that ask each one (config_change's configprops)
        "replica_urls": [f"http://{node}:{port}" for port in REPLICA_NODE_PORTS],
        # every replica's toxiproxy sidecar (its store edges go through it): latency and loss without tc netem
        "k8s_toxiproxy_urls": [f"http://{node}:{port}" for port in TOXIPROXY_NODE_PORTS],
    }


def target_file_path(settings: ClusterSettings) -> Path:
    return settings.state_dir / "target-kubernetes.yaml"


def write_target_file(settings: ClusterSettings) -> Path:
    path = target_file_path(settings)
    path.write_text("# Written by `python -m cluster deploy` (cluster/system.py): the local cluster's system.\n"
                    + yaml.safe_dump(target_keys(settings), sort_keys=False))
    return path
