"""The cluster's processes: their command lines and their health checks.

Every process runs inside the node (:meth:`cluster.netns.NodeNamespaces.enter`) and binds to the
node IP, so the machine reaches every health port over the veth and nothing listens on the
machine's own addresses. Health checks are real requests (TLS verified against the cluster's CA
where the port speaks TLS), each with a short timeout.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from cluster.configs import Paths
from cluster.install import Manifest
from cluster.netns import NodeNamespaces
from cluster.pki import Pki
from cluster.settings import ClusterSettings

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT = 2.0
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Check = Callable[[], str | None]
"""A health check: ``None`` when healthy, else what is wrong."""


@dataclass
class Component:
    """One supervised process."""

    name: str
    command: list[str]
    health: Check
    stopwaitsecs: int = 15
    environment: dict[str, str] = field(default_factory=lambda: {"PATH": PATH})


class _FromAddress(HTTPAdapter):
    """Connections from one local address: the machine's end of the veth. Without the veth that address
    does not exist and the connection fails here, instead of leaving by the default route."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def http_check(url: str, pki: Pki | None = None, client: str | None = None, expect: str | None = None,
               source: str | None = None) -> Check:
    """GET ``url``: healthy on 200 (and ``expect`` in the body, when given). HTTPS is verified against the
    cluster CA; ``client`` names the client certificate to present; ``source`` is the local address to
    connect from (see :class:`_FromAddress`)."""

    def check() -> str | None:
        kwargs: dict[str, object] = {"timeout": HEALTH_TIMEOUT}
        if pki is not None:
            kwargs["verify"] = str(pki.ca_cert)
        if pki is not None and client is not None:
            kwargs["cert"] = (str(pki.path(f"{client}.crt")), str(pki.path(f"{client}.key")))
        with requests.Session() as session:
            if source is not None:
                session.mount("http://", _FromAddress(source))
                session.mount("https://", _FromAddress(source))
            try:
                resp = session.get(url, **kwargs)  # type: ignore[arg-type]
            except requests.RequestException as exc:
                return f"{url}: {type(exc).__name__}"
        if resp.status_code != 200:
            return f"{url}: HTTP {resp.status_code} {resp.text[:200].strip()}"
        if expect is not None and expect not in resp.text:
            return f"{url}: {resp.text[:200].strip()!r} lacks {expect!r}"
        return None

    return check


def command_check(cmd: list[str], what: str) -> Check:
    def check() -> str | None:
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{what}: {exc}"
        return None if res.returncode == 0 else f"{what}: {(res.stderr or res.stdout).strip()[:200]}"

    return check


def components(settings: ClusterSettings, manifest: Manifest, pki: Pki, paths: Paths,
               ns: NodeNamespaces) -> list[Component]:
    """Every process, in start order (supervisord starts them in this order; each retries until the
    ones it needs answer)."""
    s, b, enter = settings, manifest.binary, ns.enter()
    ip, src = s.node_ip, s.host_ip
    kubeconfig = pki.kubeconfig
    serving = ["--tls-cert-file", str(pki.path("node-serving.crt")),
               "--tls-private-key-file", str(pki.path("node-serving.key"))]
    ctr = [str(manifest.tools["ctr"]), "--address", str(paths.containerd_sock)]
    return [
        Component("containerd", [*enter, str(manifest.tools["containerd"]), "--config", str(paths.containerd_config)],
                  command_check([*ctr, "version"], "ctr version")),
        Component("etcd", [
            *enter, b("etcd"), "--name", s.node_name, "--data-dir", str(paths.etcd_data),
            "--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
            "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", f"{s.node_name}=http://127.0.0.1:2380",
            "--listen-metrics-urls", f"http://{ip}:2381", "--log-level", "warn"],
            http_check(f"http://{ip}:2381/health", expect='"health":"true"', source=src)),
        Component("kube-apiserver", [
            *enter, b("kube-apiserver"), "--etcd-servers", "http://127.0.0.1:2379",
            "--bind-address", ip, "--advertise-address", ip, "--secure-port", "6443",
            "--tls-cert-file", str(pki.path("apiserver.crt")), "--tls-private-key-file", str(pki.path("apiserver.key")),
            "--client-ca-file", str(pki.ca_cert),
            "--kubelet-client-certificate", str(pki.path("apiserver-kubelet-client.crt")),
            "--kubelet-client-key", str(pki.path("apiserver-kubelet-client.key")),
            "--kubelet-certificate-authority", str(pki.ca_cert),
            "--kubelet-preferred-address-types", "InternalIP",
            "--service-cluster-ip-range", s.service_cidr,
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(pki.path("sa.pub")),
            "--service-account-signing-key-file", str(pki.path("sa.key")),
            "--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
            "--allow-privileged=true", "--profiling=false", "--cert-dir", str(paths.component_certs / "apiserver")],
            # after SIGTERM it stops its controllers and then hangs until killed (seen here with v1.37.2,
            # etcd still up): it keeps no state of its own, so wait 3 s, not 15
            http_check(f"{s.api_server}/readyz", pki, "admin", source=src), stopwaitsecs=3),
        # The machine's way in: loopback port -> node, connecting from the veth's address (no veth, no
        # connection: never out by the default route). The admin kubeconfig points here.
        # It stays on the machine's network but joins the node's mount namespace, so `down` finds it with
        # the rest even when supervisord was killed.
        Component("api-forward", [*ns.in_mnt(str(manifest.tools["socat"])),
                                  f"TCP-LISTEN:{s.api_port},bind=127.0.0.1,reuseaddr,fork",
                                  f"TCP:{ip}:6443,bind={s.host_ip}"],
                  http_check(f"{s.local_api_server}/readyz", pki, "admin"), stopwaitsecs=5),
        Component("kube-controller-manager", [
            *enter, b("kube-controller-manager"), "--kubeconfig", str(kubeconfig("kube-controller-manager")),
            "--authentication-kubeconfig", str(kubeconfig("kube-controller-manager")),
            "--authorization-kubeconfig", str(kubeconfig("kube-controller-manager")),
            "--bind-address", ip, "--secure-port", "10257",
            *serving,
            "--cluster-signing-cert-file", str(pki.ca_cert), "--cluster-signing-key-file", str(pki.path("ca.key")),
            "--root-ca-file", str(pki.ca_cert), "--service-account-private-key-file", str(pki.path("sa.key")),
            "--use-service-account-credentials=true", "--leader-elect=false",
            "--allocate-node-cidrs=true", "--cluster-cidr", s.pod_cidr,
            "--node-cidr-mask-size", s.pod_cidr.split("/")[1], "--service-cluster-ip-range", s.service_cidr,
            "--profiling=false"],
            http_check(f"https://{ip}:10257/healthz", pki, source=src)),
        Component("kube-scheduler", [
            *enter, b("kube-scheduler"), "--kubeconfig", str(kubeconfig("kube-scheduler")),
            "--authentication-kubeconfig", str(kubeconfig("kube-scheduler")),
            "--authorization-kubeconfig", str(kubeconfig("kube-scheduler")),
            "--bind-address", ip, "--secure-port", "10259",
            *serving,
            "--leader-elect=false", "--profiling=false"],
            http_check(f"https://{ip}:10259/healthz", pki, source=src)),
        Component("kubelet", [
            *enter, b("kubelet"), "--config", str(paths.kubelet_config), "--kubeconfig", str(kubeconfig("kubelet")),
            "--root-dir", str(paths.kubelet_root), "--hostname-override", s.node_name, "--node-ip", ip,
            "--oom-score-adj=0", "--v=1"],
            http_check(f"http://{ip}:10248/healthz", source=src)),
        Component("kube-proxy", [*enter, b("kube-proxy"), "--config", str(paths.kube_proxy_config)],
                  http_check(f"http://{ip}:10256/healthz", source=src)),
        Component("kube-router", [
            *enter, b("kube-router"), "--kubeconfig", str(kubeconfig("kube-router")),
            "--run-firewall=true", "--run-router=false", "--run-service-proxy=false", "--enable-cni=false",
            "--hostname-override", s.node_name, "--service-cluster-ip-range", s.service_cidr,
            "--health-port", "20244", "--metrics-port", "0", "--v", "1"],
            http_check(f"http://{ip}:20244/healthz", source=src)),
    ]
