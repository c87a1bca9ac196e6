"""The node: a network namespace and a mount namespace of its own, and a veth to the machine.

Kubernetes refuses a loopback node IP, so the node lives in its own network namespace
(``<state>/ns/net``), linked to the machine by a veth pair: ``<name>-h`` on the machine
(first address of the node range), ``eth0`` in the node (the node IP). There is no default
route: nothing in the node or its pods can reach past the machine.

Every cluster process also runs in the node's mount namespace (``<state>/ns/mnt``, private
propagation), where:

- ``/run`` is a tmpfs and ``/var/lib``, ``/var/log`` are the node's own directories in the state
  directory, so whatever containerd, runc, CNI, iptables or the kubelet write to their default
  places stays out of the machine's;
- the kubelet's machine-wide sysctls are masked (:mod:`cluster.sysctls`);
- every mount containerd and the kubelet make (container root file systems, volumes, network
  namespace pins) is invisible to the machine and disappears with the namespace.

Processes are started with ``nsenter --net=... --mount=...``, not ``ip netns exec`` (which
remounts ``/sys`` and hides the cgroup hierarchies the kubelet needs). Both namespaces are pinned
by bind mounts on files in ``<state>/ns`` (itself a private bind mount), like ``ip netns`` does.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cluster import proc, sysctls
from cluster.errors import ClusterError
from cluster.settings import ClusterSettings

logger = logging.getLogger(__name__)

# Node-side network sysctls (per network namespace): routing between pods and the node, and pod
# traffic on the bridge through iptables, where kube-proxy and kube-router's rules are.
NODE_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1",
                "net.bridge.bridge-nf-call-ip6tables": "1"}
# Machine directories the node gets its own copy of (relative names under <state>/node).
NODE_DIRS = {"/var/lib": "var-lib", "/var/log": "var-log"}


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _parse_mountinfo(text: str) -> list[tuple[str, str]]:
    points = []
    for line in text.splitlines():
        fields = line.split()
        sep = fields.index("-")
        points.append((_unescape(fields[4]), fields[sep + 1]))
    return points


def mount_points(mountinfo: Path = Path("/proc/self/mountinfo")) -> list[tuple[str, str]]:
    """``(mount point, file system type)`` of every mount in ``mountinfo``, in order."""
    return _parse_mountinfo(mountinfo.read_text())


class NodeNamespaces:
    """Creates, describes and removes the node's namespaces and its veth."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.ns_dir = settings.state_dir / "ns"
        self.net = self.ns_dir / "net"
        self.mnt = self.ns_dir / "mnt"
        self.node_root = settings.state_dir / "node"

    # ------------------------------------------------------------------ queries
    def _pinned(self, path: Path) -> bool:
        return any(point == str(path) and fstype == "nsfs" for point, fstype in mount_points())

    def exists(self) -> bool:
        """Both namespaces are pinned."""
        return self._pinned(self.net) and self._pinned(self.mnt)

    def inodes(self) -> dict[str, int]:
        """Inode numbers of the pinned namespaces (how ``/proc/<pid>/ns/*`` names them)."""
        return {kind: os.stat(path).st_ino for kind, path in (("net", self.net), ("mnt", self.mnt))
                if self._pinned(path)}

    def enter(self) -> list[str]:
        """Command prefix that runs a program inside the node."""
        return ["nsenter", f"--net={self.net}", f"--mount={self.mnt}", "--"]

    def in_net(self, *cmd: str) -> list[str]:
        return ["nsenter", f"--net={self.net}", "--", *cmd]

    def in_node(self, *cmd: str) -> list[str]:
        return [*self.enter(), *cmd]

    def veth_up(self) -> bool:
        return proc.run(["ip", "-o", "link", "show", "dev", self.settings.host_veth], check=False).returncode == 0

    # ------------------------------------------------------------------ create
    def create(self) -> None:
        """Create whatever is missing (idempotent): pins, mount setup, veth, addresses, sysctls."""
        self.ns_dir.mkdir(parents=True, exist_ok=True)
        if not any(point == str(self.ns_dir) for point, _ in mount_points()):
            # A namespace file can only be pinned on a mount with private propagation.
            proc.run(["mount", "--bind", str(self.ns_dir), str(self.ns_dir)])
            proc.run(["mount", "--make-private", str(self.ns_dir)])
        if not self._pinned(self.mnt):
            self.mnt.touch()
            proc.run(["unshare", f"--mount={self.mnt}", "--propagation", "private", "true"])
            self._setup_mounts()
        if not self._pinned(self.net):
            self.net.touch()
            proc.run(["unshare", f"--net={self.net}", "true"])
        self._setup_link()

    def _setup_mounts(self) -> None:
        """Inside the new mount namespace: own /run, /var/lib, /var/log; masked kubelet sysctls."""
        self.node_root.mkdir(parents=True, exist_ok=True)
        # The copy of the machine's mount table holds every namespace pinned on the machine at this
        # moment (another tool's `ip netns add`): drop those copies, or they would outlive their owner.
        copied = proc.run(self.in_mnt("cat", "/proc/self/mountinfo")).stdout
        for point, fstype in reversed(_parse_mountinfo(copied)):
            if fstype == "nsfs":
                proc.run(self.in_mnt("umount", "--lazy", point), check=False)
        proc.run(self.in_mnt("mount", "-t", "tmpfs", "-o", "mode=755,size=64m", "tmpfs", "/run"))
        for target, name in NODE_DIRS.items():
            source = self.node_root / name
            source.mkdir(parents=True, exist_ok=True)
            proc.run(self.in_mnt("mount", "--bind", str(source), target))
        for key, file in sysctls.write_masks(self.node_root / "sysctl-masks").items():
            proc.run(self.in_mnt("mount", "--bind", str(file), str(sysctls.sysctl_path(key))))

    def in_mnt(self, *cmd: str) -> list[str]:
        return ["nsenter", f"--mount={self.mnt}", "--", *cmd]

    def _setup_link(self) -> None:
        s = self.settings
        if not self.veth_up():
            proc.run(["ip", "link", "add", s.host_veth, "type", "veth", "peer", "name", "eth0", "netns", str(self.net)])
        _ensure_addr(["ip"], s.host_veth, f"{s.host_ip}/{s.node_prefix}")
        proc.run(["ip", "link", "set", s.host_veth, "up"])
        _ensure_addr(self.in_net("ip"), "eth0", f"{s.node_ip}/{s.node_prefix}")
        proc.run(self.in_net("ip", "link", "set", "lo", "up"))
        proc.run(self.in_net("ip", "link", "set", "eth0", "up"))
        # ClusterIPs must be routable from the node itself (kube-proxy rewrites them in OUTPUT); the
        # route leads to the machine's end of the veth and goes no further (the machine does not forward).
        proc.run(self.in_net("ip", "route", "replace", s.service_cidr, "dev", "eth0"))
        for key, value in NODE_SYSCTLS.items():
            proc.run(self.in_net("sysctl", "-q", "-w", f"{key}={value}"))

    # ------------------------------------------------------------------ destroy
    def destroy(self) -> list[str]:
        """Unpin both namespaces, delete the veth if it outlived them, drop the private bind mount.

        Call it once every process of the node is gone: a namespace lives as long as a process is in
        it. Returns problems (empty when everything is gone).
        """
        problems: list[str] = []
        for path in (self.mnt, self.net):
            if self._pinned(path):
                res = proc.run(["umount", str(path)], check=False)
                if res.returncode != 0:
                    problems.append(f"umount {path}: {res.stderr.strip()}")
        if self.veth_up():
            res = proc.run(["ip", "link", "del", self.settings.host_veth], check=False)
            if res.returncode != 0 and self.veth_up():
                problems.append(f"veth {self.settings.host_veth}: {res.stderr.strip()}")
        if any(point == str(self.ns_dir) for point, _ in mount_points()):
            res = proc.run(["umount", str(self.ns_dir)], check=False)
            if res.returncode != 0:
                problems.append(f"umount {self.ns_dir}: {res.stderr.strip()}")
        for path in (self.mnt, self.net):
            if not self._pinned(path):
                path.unlink(missing_ok=True)
        return problems


def _ensure_addr(ip: list[str], dev: str, cidr: str) -> None:
    out = proc.run([*ip, "-o", "addr", "show", "dev", dev]).stdout
    if f" {cidr} " not in out:
        proc.run([*ip, "addr", "add", cidr, "dev", dev])


def require_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError("the local cluster needs root (namespaces, mounts, cgroups, iptables)")
