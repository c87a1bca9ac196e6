"""``up``, ``status`` and ``down`` of the local single-node cluster.

The cluster's state is its state directory (certificates, etcd, containerd's images and
snapshots, the kubelet's root, logs, ``cluster.json``, the saved host sysctls). ``down`` keeps it,
so the next ``up`` is warm (images imported, objects in etcd); ``down --purge`` deletes it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import kubernetes

from cluster import addons, api, cgroups, configs, sysctls
from cluster.components import Component, components
from cluster.errors import ClusterError, ComponentError
from cluster.images import Images
from cluster.install import Manifest, load_manifest
from cluster.netns import NodeNamespaces, mount_points, require_root
from cluster.pki import Pki
from cluster.settings import ClusterSettings
from cluster.supervisor import Supervisor

logger = logging.getLogger(__name__)

Progress = Callable[[str, str], None]
"""``progress(step, detail)``, called as ``up`` and ``down`` go."""

UP_TIMEOUT = 300.0
KILL_GRACE = 10.0
SHIM_GRACE = 1.0


def _log_progress(step: str, detail: str) -> None:
    logger.info("%s: %s", step, detail)


@dataclass
class ComponentStatus:
    name: str
    state: str          # supervisord's state (RUNNING, BACKOFF...), or PRESENT/ABSENT/READY/... for the others
    pid: int | None
    healthy: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ClusterStatus:
    state_dir: str
    api_server: str
    kubeconfig: str
    supervisord_pid: int | None
    components: list[ComponentStatus]

    @property
    def healthy(self) -> bool:
        return bool(self.components) and all(c.healthy for c in self.components)

    def as_dict(self) -> dict[str, object]:
        return {**{k: v for k, v in asdict(self).items() if k != "components"}, "healthy": self.healthy,
                "components": [c.as_dict() for c in self.components]}


class LocalCluster:
    """One cluster, found by its state directory."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.ns = NodeNamespaces(settings)
        self.pki = Pki(settings)
        self.paths = configs.Paths(settings)
        self.supervisor = Supervisor(settings)
        self.state_file = settings.state_dir / "cluster.json"
        self.sysctl_snapshot = settings.state_dir / "host-sysctls.json"

    # ------------------------------------------------------------------ state
    def _read_state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _write_state(self) -> None:
        state = {**self._read_state(), "name": self.settings.name, "node_ip": self.settings.node_ip,
                 "api_server": self.settings.local_api_server, "cgroup_root": self.settings.cgroup_root,
                 "namespaces": self.ns.inodes(), "kubeconfig": str(self.settings.admin_kubeconfig)}
        self.state_file.write_text(json.dumps(state, indent=2))

    def components(self, manifest: Manifest) -> list[Component]:
        return components(self.settings, manifest, self.pki, self.paths, self.ns)

    # --------------------------------------------------------------------- up
    def up(self, progress: Progress = _log_progress, timeout: float = UP_TIMEOUT) -> ClusterStatus:
        """Start whatever is not running and wait until the node and CoreDNS are Ready (idempotent).

        Raises :class:`MissingToolError` before touching anything when the install is incomplete,
        :class:`ComponentError` naming the component (and its log) that did not become healthy.
        """
        require_root()
        manifest = load_manifest(self.settings)
        deadline = time.monotonic() + timeout
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        saved = sysctls.save_snapshot(self.sysctl_snapshot)
        progress("host sysctls", f"saved {len(saved)} to {self.sysctl_snapshot}")
        self.ns.create()
        progress("node namespaces", f"node {self.settings.node_ip} on {self.settings.host_veth}")
        cgroups.create(self.settings.cgroup_root)
        self.pki.ensure()
        configs.write_all(self.settings, manifest, self.pki)
        comps = self.components(manifest)
        self.supervisor.write_config(comps)
        if self.supervisor.pid() is None:
            pid = self.supervisor.start()
            progress("supervisord", f"started (pid {pid})")
        else:
            self.supervisor.reload()
            started = self.supervisor.start_stopped()
            if started:
                progress("supervisord", f"started {', '.join(started)} again")
        self._write_state()
        by_name = {c.name: c for c in comps}
        self._wait(by_name["containerd"], deadline, progress)
        imported = Images(manifest, self.paths.containerd_sock).import_missing()
        progress("images", f"imported {', '.join(imported)}" if imported else "all present")
        self._wait(by_name["etcd"], deadline, progress)
        self._wait(by_name["kube-apiserver"], deadline, progress)
        self._wait(by_name["api-forward"], deadline, progress)
        addons.apply(self.settings, manifest)
        progress("addons", "kube-router RBAC, CoreDNS applied")
        for comp in comps:
            self._wait(comp, deadline, progress)
        with api.admin_client(self.settings) as client:
            self._wait_for("node", lambda: api.node_problem(client, self.settings.node_name), deadline, progress,
                           self.supervisor.log_file("kubelet"))
            self._wait_for("coredns", lambda: api.deployment_problem(client, "kube-system", "coredns"), deadline,
                           progress, self.supervisor.log_file("kubelet"))
        self._write_state()
        # Every component was healthy once; one may have died since and be restarting: a controller-manager
        # started beside an API server that has not yet loaded its RBAC exits ("cannot get configmaps") and
        # supervisord starts it again 1 s later. Its status in that window was STARTING, and `up` said
        # UNHEALTHY (make gate-k8s-in-cluster, 2026-12-03). So: healthy all at once, or the deadline.
        while True:
            status = self.status()
            if status.healthy or time.monotonic() > deadline:
                return status
            time.sleep(1)

    def _wait(self, comp: Component, deadline: float, progress: Progress) -> None:
        self._wait_for(comp.name, comp.health, deadline, progress, self.supervisor.log_file(comp.name))

    def _wait_for(self, name: str, check: Callable[[], str | None], deadline: float, progress: Progress,
                  log_file: Path) -> None:
        t0 = time.monotonic()
        problem: str | None = "not checked"
        while True:
            try:
                problem = check()
            except (OSError, kubernetes.client.ApiException, ClusterError) as exc:
                problem = str(exc)
            if problem is None:
                progress(name, f"healthy ({time.monotonic() - t0:.1f} s)")
                return
            if time.monotonic() > deadline:
                raise ComponentError(name, f"not healthy in time: {problem}", log_file)
            time.sleep(0.25)

    # ----------------------------------------------------------------- status
    def status(self) -> ClusterStatus:
        """One entry per component: supervised processes, the node's namespaces, the node, CoreDNS,
        images and the host's sysctls. Never raises for a cluster that is down: it reports it."""
        s = self.settings
        out: list[ComponentStatus] = []
        pins = self.ns.exists()
        veth = self.ns.veth_up()
        out.append(ComponentStatus("namespaces", "PRESENT" if pins and veth else "ABSENT", None, pins and veth,
                                   f"net+mnt pinned in {self.ns.ns_dir}, veth {s.host_veth}" if pins and veth
                                   else f"pinned: {pins}, veth {s.host_veth}: {veth}"))
        sv_pid = self.supervisor.pid()
        info = self.supervisor.process_info()
        orphans = self.node_processes() if sv_pid is None else set()
        out.append(ComponentStatus("supervisord", "RUNNING" if sv_pid else "ABSENT", sv_pid, sv_pid is not None,
                                   "ok" if sv_pid else f"not running; {len(orphans)} processes of the node left "
                                   "without it (`down` stops them)" if orphans else "not running"))
        try:
            manifest: Manifest | None = load_manifest(s)
        except ClusterError as exc:
            manifest = None
            out.append(ComponentStatus("install", "ABSENT", None, False, str(exc)))
        comps = self.components(manifest) if manifest else []
        for comp in comps:
            pinfo = info.get(comp.name)
            state = str(pinfo["statename"]) if pinfo else "ABSENT"
            pid = int(pinfo["pid"]) if pinfo and pinfo.get("pid") else None
            problem = comp.health() if state == "RUNNING" else (pinfo or {}).get("spawnerr") or "not running"
            out.append(ComponentStatus(comp.name, state, pid, problem is None, problem or "ok"))
        if manifest and all(c.healthy for c in out):
            try:
                missing = Images(manifest, self.paths.containerd_sock).missing()
                out.append(ComponentStatus("images", "PRESENT" if not missing else "MISSING", None, not missing,
                                           f"missing: {[i.ref for i in missing]}" if missing
                                           else f"{len(manifest.images)} imported"))
                with api.admin_client(s) as client:
                    for name, problem in (("node", api.node_problem(client, s.node_name)),
                                          ("coredns", api.deployment_problem(client, "kube-system", "coredns"))):
                        out.append(ComponentStatus(name, "READY" if problem is None else "NOT READY", None,
                                                   problem is None, problem or "ready"))
            except (OSError, ClusterError, kubernetes.client.ApiException) as exc:
                out.append(ComponentStatus("api", "ERROR", None, False, str(exc)))
        changed = sysctls.drift(sysctls.load_snapshot(self.sysctl_snapshot))
        out.append(ComponentStatus("host sysctls", "CHANGED" if changed else "UNCHANGED", None, not changed,
                                   f"changed since up: {changed}" if changed else "as saved before up"))
        return ClusterStatus(state_dir=str(s.state_dir), api_server=s.local_api_server,
                             kubeconfig=str(s.admin_kubeconfig), supervisord_pid=sv_pid, components=out)

    def is_running(self) -> bool:
        return self.supervisor.pid() is not None

    # ------------------------------------------------------------------- down
    def node_processes(self) -> set[int]:
        """Pids of every process of the cluster: in the node's namespaces (containerd, shims, every
        component) or in a cgroup below the kubelet's root (the containers)."""
        inodes = set(self.ns.inodes().values()) | set(self._read_state().get("namespaces", {}).values())
        found = cgroups.pids(self.settings.cgroup_root)
        me = os.getpid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            for kind in ("net", "mnt"):
                try:
                    if os.stat(entry / "ns" / kind).st_ino in inodes:
                        found.add(int(entry.name))
                        break
                except OSError:
                    continue
        return found

    def down(self, purge: bool = False, progress: Progress = _log_progress) -> list[str]:
        """Stop everything and put the machine back as it was; returns what could not be undone.

        Order: supervisord's programs (reverse start order) and supervisord; every process left in
        the node or its cgroups (the containers and their shims: SIGTERM, then SIGKILL), verified by
        pid; the namespaces (their mounts, the pods' network namespaces and the veth go with them);
        the cgroups; the host sysctls. ``purge`` then deletes the state directory.
        """
        require_root()
        problems: list[str] = []
        if self.supervisor.pid() is not None:
            self.supervisor.stop_all()
            self.supervisor.shutdown()
        sv_pid = self.supervisor.pidfile_pid()
        if sv_pid is not None:
            _kill_and_wait({sv_pid}, KILL_GRACE)
        progress("supervisord", "stopped")
        # containers first (a grace period to exit on SIGTERM), then what is left in the node: the
        # containerd shims, which do not exit on SIGTERM and have nothing left to do
        left = _kill_and_wait(cgroups.pids(self.settings.cgroup_root), KILL_GRACE)
        left |= _kill_and_wait(self.node_processes(), SHIM_GRACE)
        left |= {p for p in self.node_processes() if _alive(p)}
        if left:
            problems.append(f"processes still alive: {sorted(left)}")
        progress("processes", "none left" if not left else f"left: {sorted(left)}")
        problems += self.ns.destroy()
        progress("namespaces", "removed")
        problems += cgroups.remove(self.settings.cgroup_root)
        progress("cgroups", f"{self.settings.cgroup_root} removed")
        try:
            restored = sysctls.restore_snapshot(self.sysctl_snapshot)
            progress("host sysctls", f"restored {restored}" if restored else "unchanged")
        except OSError as exc:
            problems.append(str(exc))
        if purge:
            if problems:
                problems.append(f"state kept in {self.settings.state_dir} (not purged: see above)")
            else:
                self._purge()
                progress("state", f"{self.settings.state_dir} deleted")
        return problems

    def _purge(self) -> None:
        root = str(self.settings.state_dir)
        mounted = [p for p, _ in mount_points() if p == root or p.startswith(root + "/")]
        if mounted:
            raise ClusterError(f"not deleting {root}: still mounted: {mounted}")
        if self.settings.state_dir.exists():
            shutil.rmtree(self.settings.state_dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purpose: its parent will reap it
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _kill_and_wait(pids: set[int], grace: float) -> set[int]:
    """SIGTERM ``pids``, SIGKILL whatever is left after ``grace`` seconds; returns pids still alive."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        alive = {p for p in pids if _alive(p)}
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = {p for p in alive if _alive(p)}
        if not alive:
            return set()
    return {p for p in pids if _alive(p)}
