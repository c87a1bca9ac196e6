"""Where the cluster keeps its state, what it is called, and its address plan.

Every value has an environment variable (named in :data:`ENV`); a bad value is reported with
the variable's name. Two clusters can run on one machine when their name, state directory and
address ranges all differ.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import ClusterError

DEFAULT_DATA_ROOT = Path("/var/tmp/sql-audit-resilience")
DEFAULT_K8S_CACHE = Path("/var/cache/sql-audit-resilience/k8s")
REPO_ROOT = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = REPO_ROOT / "deploy" / "k8s" / "local" / "install.sh"

ENV = {
    "state_dir": "RESILIENCE_CLUSTER_DIR",
    "name": "RESILIENCE_CLUSTER_NAME",
    "node_cidr": "RESILIENCE_CLUSTER_NODE_CIDR",
    "pod_cidr": "RESILIENCE_CLUSTER_POD_CIDR",
    "service_cidr": "RESILIENCE_CLUSTER_SERVICE_CIDR",
    "cache": "RESILIENCE_K8S_CACHE",
    "api_port": "RESILIENCE_CLUSTER_API_PORT",
}
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,9}$")  # the host's veth is "<name>-h": at most 15 characters


@dataclass(frozen=True)
class ClusterSettings:
    """One cluster's identity and address plan.

    ``node_cidr``: the link between the machine (first address) and the node's network namespace
    (tenth address: the node IP every component binds to). ``pod_cidr``: the pods' bridge ``cni0``
    inside the node (gateway: first address). ``service_cidr``: ClusterIPs (the API server's is the
    first address, CoreDNS's the tenth).
    """

    state_dir: Path
    name: str = "sqlaudit"
    node_cidr: str = "10.87.0.0/24"
    pod_cidr: str = "10.88.0.0/24"
    service_cidr: str = "10.96.0.0/24"
    cache_dir: Path = DEFAULT_K8S_CACHE
    api_port: int = 16443

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise ClusterError(f"{ENV['name']}={self.name!r}: lowercase letters, digits and '-', "
                               "at most 10 characters, starting with a letter")
        nets = {}
        for field in ("node_cidr", "pod_cidr", "service_cidr"):
            value = getattr(self, field)
            try:
                net = ipaddress.IPv4Network(value)
            except ValueError as exc:
                raise ClusterError(f"{ENV[field]}={value!r}: not an IPv4 network ({exc})") from None
            if not net.is_private or net.prefixlen > 28:
                raise ClusterError(f"{ENV[field]}={value!r}: must be a private range of at least 16 addresses")
            nets[field] = net
        for a, b in (("node_cidr", "pod_cidr"), ("node_cidr", "service_cidr"), ("pod_cidr", "service_cidr")):
            if nets[a].overlaps(nets[b]):
                raise ClusterError(f"{ENV[a]}={nets[a]} overlaps {ENV[b]}={nets[b]}")
        if not 1024 <= self.api_port <= 65535:
            raise ClusterError(f"{ENV['api_port']}={self.api_port}: not a port in 1024..65535")
        if not self.state_dir.is_absolute():
            raise ClusterError(f"{ENV['state_dir']}={self.state_dir}: must be an absolute path")
        for hidden in (Path("/var/lib"), Path("/var/log"), Path("/run")):
            if self.state_dir.is_relative_to(hidden):
                raise ClusterError(f"{ENV['state_dir']}={self.state_dir}: must not be under {hidden} "
                                   "(the node's mount namespace replaces that directory)")

    @classmethod
    def from_env(cls, state_dir: Path | None = None, env: dict[str, str] | None = None) -> ClusterSettings:
        """Settings from the environment; ``state_dir`` (the ``--state-dir`` option) wins over the variable.

        Default state directory: ``$RESILIENCE_DATA_ROOT/cluster`` (``/var/tmp/sql-audit-resilience/cluster``).
        """
        env = dict(os.environ if env is None else env)
        root = Path(env.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT))
        chosen = state_dir or Path(env.get(ENV["state_dir"], root / "cluster"))
        kwargs: dict[str, str] = {f: env[v] for f, v in ENV.items()
                                  if f in ("name", "node_cidr", "pod_cidr", "service_cidr") and env.get(v)}
        cache = Path(env.get(ENV["cache"], DEFAULT_K8S_CACHE))
        try:
            port = int(env.get(ENV["api_port"], "16443"))
        except ValueError:
            raise ClusterError(f"{ENV['api_port']}={env[ENV['api_port']]!r}: not a number") from None
        return cls(state_dir=chosen.absolute(), cache_dir=cache, api_port=port, **kwargs)

    # ---------------------------------------------------------------- addresses
    def _host(self, cidr: str, index: int) -> str:
        return str(ipaddress.IPv4Network(cidr)[index])

    @property
    def host_ip(self) -> str:
        """The machine's end of the link to the node."""
        return self._host(self.node_cidr, 1)

    @property
    def node_ip(self) -> str:
        """The node's address: API server, kubelet, every component's health port."""
        return self._host(self.node_cidr, 10)

    @property
    def node_prefix(self) -> int:
        return ipaddress.IPv4Network(self.node_cidr).prefixlen

    @property
    def pod_gateway(self) -> str:
        return self._host(self.pod_cidr, 1)

    @property
    def api_service_ip(self) -> str:
        return self._host(self.service_cidr, 1)

    @property
    def dns_service_ip(self) -> str:
        return self._host(self.service_cidr, 10)

    @property
    def api_server(self) -> str:
        """The API server as the node's components reach it."""
        return f"https://{self.node_ip}:6443"

    @property
    def local_api_server(self) -> str:
        """The API server as the machine reaches it: a loopback port forwarded into the node (the admin
        kubeconfig's server). When the cluster is down it refuses connections; a client holding the
        node IP instead would send its requests out of the machine by the default route."""
        return f"https://127.0.0.1:{self.api_port}"

    # ---------------------------------------------------------------- names
    @property
    def node_name(self) -> str:
        return f"{self.name}-node"

    @property
    def host_veth(self) -> str:
        return f"{self.name}-h"

    @property
    def cgroup_root(self) -> str:
        """The kubelet's ``cgroupRoot``: every pod's cgroup is below it, in every hierarchy."""
        return f"/{self.name}-k8s"

    # ---------------------------------------------------------------- paths
    @property
    def manifest_path(self) -> Path:
        """Written by deploy/k8s/local/install.sh: every binary and image archive of the install."""
        return self.cache_dir / "local-cluster.json"

    @property
    def addons_manifest_path(self) -> Path:
        """The add-ons' images (kube-state-metrics): a manifest of their own, see deploy/k8s/local/install.sh."""
        return self.cache_dir / "local-addons.json"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "pki" / "admin.kubeconfig"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"
