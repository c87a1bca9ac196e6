"""A real Kubernetes API server for the kubernetes fault backends (marker ``k8s``).

Like controller-runtime's envtest: etcd and kube-apiserver (built by
deploy/k8s/envtest/install.sh, cached under /var/cache/sql-audit-resilience/k8s/<version>/)
run as plain processes on loopback ports, with RBAC on, a static admin token and a
service-account signing key generated here. There are no nodes: a small controller thread
(:class:`MiniStatefulSetController`) plays the StatefulSet controller and the kubelet — it
creates ``<name>-<i>`` pods from each StatefulSet's template, marks them Running and Ready
with a fake pod IP, deletes surplus ones, rolls pods whose template revision is stale (one at a
time, highest ordinal first, as ``RollingUpdate`` does) and keeps the StatefulSet's status
(``observedGeneration``, ready/updated replicas, current/update revision) as the real controller
does. Unscheduled pods are deleted at once by the API server whatever the grace period, which is
what a kill looks like from the API.

The backends authenticate as the ServiceAccount of deploy/k8s/base (token from the
TokenRequest API), so everything they do is checked against the Role shipped in git.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from faults.kubernetes.hold import first_ordinal

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "deploy" / "k8s" / "envtest" / "install.sh"
K8S_VERSION = os.environ.get("K8S_VERSION", "1.37.2")
CACHE = Path(os.environ.get("RESILIENCE_K8S_CACHE", "/var/cache/sql-audit-resilience/k8s")) / f"v{K8S_VERSION}"
NAMESPACE = "sql-audit"
CONTEXT = "envtest-sandbox"
ADMIN_TOKEN = "envtest-admin-token"
REVISION = "controller-revision-hash"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def kustomize_binary() -> Path:
    """The kustomize deploy/k8s/envtest/install.sh pins (asked from the script, so the version lives there)."""
    out = subprocess.run(["bash", str(INSTALL), "--print-kustomize"], check=True, capture_output=True, text=True,
                         timeout=30).stdout
    return Path(out.strip())


def kustomize(path: Path) -> list[dict[str, Any]]:
    """Documents of ``kustomize build`` with the pinned kustomize; fails the test when it is not installed."""
    binary = kustomize_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no kustomize at {binary}: run `make k8s-envtest` (make test does)")
    out = subprocess.run([str(binary), "build", "--load-restrictor", "LoadRestrictionsNone", str(path)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def write_kubeconfig(path: Path, server: str, token: str, context: str, ca: Path | None = None) -> Path:
    """A kubeconfig with one bearer-token user; TLS verified against ``ca`` when given."""
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    else:
        cluster["insecure-skip-tls-verify"] = True
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "envtest", "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "envtest", "user": context, "namespace": NAMESPACE}}],
    }))
    path.chmod(0o600)
    return path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class MiniStatefulSetController(threading.Thread):
    """StatefulSet controller + kubelet stand-in: keeps ``<sts>-<i>`` pods existing, Running and Ready."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        super().__init__(name="mini-sts-controller", daemon=True)
        self.core = kubernetes.client.CoreV1Api(api)
        self.apps = kubernetes.client.AppsV1Api(api)
        self.namespace = namespace
        self.stopped = threading.Event()
        self.errors: list[str] = []
        self._ip = 10

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            try:
                self.reconcile()
            except Exception as exc:  # keep going; a test reads self.errors
                self.errors.append(repr(exc))

    def reconcile(self) -> None:
        ns = self.namespace
        listed: list[Any] = self.core.list_namespaced_pod(ns, _request_timeout=5).items
        pods = {p.metadata.name: p for p in listed}
        sets: list[Any] = self.apps.list_namespaced_stateful_set(ns, _request_timeout=5).items
        for sts in sets:
            template = self.apps.api_client.sanitize_for_serialization(sts.spec.template)
            digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
            revision = f"{sts.metadata.name}-{digest}"
            start = first_ordinal(sts)  # spec.ordinals.start, as the real controller reads it
            wanted = {f"{sts.metadata.name}-{i}" for i in range(start, start + (sts.spec.replicas or 0))}
            for name in sorted(wanted - pods.keys()):
                labels = {**template["metadata"].get("labels", {}), REVISION: revision}
                body = {"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "labels": labels,
                                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                                          "name": sts.metadata.name, "uid": sts.metadata.uid,
                                                          "controller": True}]},
                        "spec": template["spec"]}
                with contextlib.suppress(kubernetes.client.ApiException):  # 409: still terminating
                    self.core.create_namespaced_pod(ns, body, _request_timeout=5)
            owned = {}
            for name, pod in pods.items():
                if not any(o.uid == sts.metadata.uid for o in (pod.metadata.owner_references or [])):
                    continue
                if name not in wanted and pod.metadata.deletion_timestamp is None:
                    self.core.delete_namespaced_pod(name, ns, _request_timeout=5)
                elif name in wanted and pod.metadata.deletion_timestamp is None:
                    owned[name] = pod
            self._roll_and_report(sts, revision, wanted, owned)
        for name, pod in pods.items():
            if pod.metadata.deletion_timestamp is None and pod.status.phase != "Running":
                self._ip += 1
                ip = f"10.244.0.{self._ip % 250 + 2}"
                with contextlib.suppress(kubernetes.client.ApiException):
                    self.core.patch_namespaced_pod_status(name, ns, {"status": {
                        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                        "conditions": [{"type": "Ready", "status": "True"}]}}, _request_timeout=5)

    def _roll_and_report(self, sts: Any, revision: str, wanted: set[str], live: dict[str, Any]) -> None:
        """Delete the highest-ordinal stale pod once all are Ready (RollingUpdate); write the StatefulSet status."""
        ready = {n for n, p in live.items()
                 if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))}
        updated = {n for n, p in live.items() if (p.metadata.labels or {}).get(REVISION) == revision}
        strategy = sts.spec.update_strategy.type if sts.spec.update_strategy else "RollingUpdate"
        stale = sorted(live.keys() - updated, key=lambda n: int(n.rsplit("-", 1)[1]))
        if strategy == "RollingUpdate" and stale and ready == wanted:
            with contextlib.suppress(kubernetes.client.ApiException):
                self.core.delete_namespaced_pod(stale[-1], self.namespace, _request_timeout=5)
        old = sts.status
        done = updated == wanted and ready == wanted
        current = revision if done else ((old.current_revision if old else None) or revision)
        status = {"observedGeneration": sts.metadata.generation, "replicas": len(live),
                  "readyReplicas": len(ready), "availableReplicas": len(ready), "updatedReplicas": len(updated),
                  "currentReplicas": sum((p.metadata.labels or {}).get(REVISION) == current for p in live.values()),
                  "updateRevision": revision, "currentRevision": current}
        seen = self.apps.api_client.sanitize_for_serialization(old) if old else {}
        if any(seen.get(k, 0 if isinstance(v, int) else None) != v for k, v in status.items()):
            with contextlib.suppress(kubernetes.client.ApiException):
                self.apps.patch_namespaced_stateful_set_status(sts.metadata.name, self.namespace,
                                                               {"status": status}, _request_timeout=5)


@dataclass
class Envtest:
    """The running API server: admin client, the ServiceAccount's kubeconfig, and helpers."""

    server: str
    admin: kubernetes.client.ApiClient
    admin_kubeconfig: Path
    sa_kubeconfig: Path
    tmp: Path
    controller: MiniStatefulSetController
    rbac_docs: list[dict[str, Any]] = field(default_factory=list)

    def configuration(self, state_dir: Path, run_id: str, **extra: Any) -> dict[str, Any]:
        """Chaos Toolkit configuration for the kubernetes target, as the ServiceAccount."""
        return {"target": "kubernetes", "k8s_kubeconfig": str(self.sa_kubeconfig), "k8s_context": CONTEXT,
                "k8s_namespace": NAMESPACE, "k8s_allowed_contexts": [CONTEXT],
                "k8s_allowed_namespaces": [NAMESPACE], "k8s_ready_timeout": 30, "fault_state_dir": str(state_dir),
                "run_id": run_id, "watchdog": False, **extra}

    def kubectl(self, *args: str, stdin: str | None = None, kubeconfig: Path | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.fail("kubectl is not on PATH: `make k8s-cluster` builds it (deploy/k8s/local/install.sh)")
        return subprocess.run([kubectl, "--kubeconfig", str(kubeconfig or self.admin_kubeconfig), *args],
                              input=stdin, capture_output=True, text=True, timeout=120, check=check)

    def wait(self, what: str, predicate: Any, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; controller errors: "
                             f"{self.controller.errors[-3:]}")


@pytest.fixture(scope="session")
def envtest() -> Iterator[Envtest]:
    """etcd + kube-apiserver for the session, RBAC of deploy/k8s/base applied, a mini StatefulSet controller."""
    apiserver, etcd_bin = CACHE / "kube-apiserver", CACHE / "etcd"
    if not (apiserver.exists() and etcd_bin.exists()):
        pytest.fail(f"no kube-apiserver/etcd in {CACHE}: run `make k8s-envtest` (make test does)")
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make the service-account signing key")
    tmp = Path(tempfile.mkdtemp(prefix="sql-audit-envtest-"))
    procs: list[subprocess.Popen[bytes]] = []
    controller: MiniStatefulSetController | None = None
    try:
        subprocess.run([openssl, "genrsa", "-out", str(tmp / "sa.key"), "2048"], check=True, capture_output=True)
        subprocess.run([openssl, "rsa", "-in", str(tmp / "sa.key"), "-pubout", "-out", str(tmp / "sa.pub")],
                       check=True, capture_output=True)
        (tmp / "tokens.csv").write_text(f"{ADMIN_TOKEN},envtest-admin,envtest-admin-uid,system:masters\n")
        client_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        with (tmp / "etcd.log").open("wb") as log:
            procs.append(subprocess.Popen(
                [str(etcd_bin), "--data-dir", str(tmp / "etcd"), "--listen-client-urls", etcd_url,
                 "--advertise-client-urls", etcd_url, "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                 "--initial-cluster", f"default=http://127.0.0.1:{peer_port}", "--log-level", "error"],
                stdout=log, stderr=subprocess.STDOUT))
        with (tmp / "apiserver.log").open("wb") as log:
            procs.append(subprocess.Popen(
                [str(apiserver), "--etcd-servers", etcd_url, "--cert-dir", str(tmp / "certs"),
                 "--secure-port", str(api_port), "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                 "--endpoint-reconciler-type", "none", "--service-cluster-ip-range", "10.0.0.0/24",
                 "--authorization-mode", "RBAC", "--token-auth-file", str(tmp / "tokens.csv"),
                 "--service-account-issuer", "https://envtest.local",
                 "--service-account-key-file", str(tmp / "sa.pub"),
                 "--service-account-signing-key-file", str(tmp / "sa.key"),
                 "--disable-admission-plugins", "ServiceAccount"],
                stdout=log, stderr=subprocess.STDOUT))
        server = f"https://127.0.0.1:{api_port}"
        admin_kubeconfig = write_kubeconfig(tmp / "admin.kubeconfig", server, ADMIN_TOKEN, "envtest-admin")
        admin = kubernetes.config.new_client_from_config(str(admin_kubeconfig))
        deadline = time.monotonic() + 90
        while True:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}; logs in {tmp}")
            try:
                if kubernetes.client.VersionApi(admin).get_code(_request_timeout=2).minor:
                    kubernetes.client.CoreV1Api(admin).list_namespace(_request_timeout=2)
                    break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        # the server made its self-signed serving certificate (SANs 127.0.0.1, localhost): verify TLS from now on
        ca = tmp / "certs" / "apiserver.crt"
        admin.close()
        admin_kubeconfig = write_kubeconfig(tmp / "admin.kubeconfig", server, ADMIN_TOKEN, "envtest-admin", ca)
        admin = kubernetes.config.new_client_from_config(str(admin_kubeconfig))
        core = kubernetes.client.CoreV1Api(admin)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": "default"}})
        rbac_docs = [d for d in kustomize(ROOT / "deploy/k8s/base")
                     if d["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
        kubernetes.utils.create_from_yaml(admin, yaml_objects=rbac_docs, namespace=NAMESPACE)
        sa = next(d for d in rbac_docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
        token = core.create_namespaced_service_account_token(
            sa, NAMESPACE, {"spec": {"expirationSeconds": 7200}}).status.token
        sa_kubeconfig = write_kubeconfig(tmp / "sa.kubeconfig", server, token, CONTEXT, ca)
        controller = MiniStatefulSetController(admin, NAMESPACE)
        controller.start()
        yield Envtest(server=server, admin=admin, admin_kubeconfig=admin_kubeconfig, sa_kubeconfig=sa_kubeconfig,
                      tmp=tmp, controller=controller, rbac_docs=rbac_docs)
    finally:
        if controller is not None:
            controller.stopped.set()
            controller.join(timeout=5)
        for proc in reversed(procs):
            _stop(proc)
        if os.environ.get("RESILIENCE_KEEP_ENVTEST"):
            print(f"envtest data and logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
