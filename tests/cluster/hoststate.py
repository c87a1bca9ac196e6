"""A snapshot of what a cluster could leave on the machine, taken by the tests independently of ``cluster``.

Mounts, network links, network namespaces, cgroups, iptables/ip6tables (nft and legacy) and ipsets,
every readable sysctl, and the processes that belong to the cluster. ``diff(before, after)`` lists
what ``down`` left behind; it reads the machine itself and shares no code with ``cluster.core``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# Sysctls that change on their own (counters, entropy, pids).
VOLATILE_SYSCTL = re.compile(
    r"^(kernel\.random\.|fs\.(dentry-state|inode-nr|inode-state|file-nr|aio-nr|quota\.)|kernel\.ns_last_pid"
    r"|kernel\.pty\.nr|net\.netfilter\.nf_conntrack_count|vm\.stat_refresh|fs\.binfmt_misc\.)")


def mounts() -> set[tuple[str, str]]:
    out = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        out.add((fields[4], fields[fields.index("-") + 1]))
    return out


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True, timeout=10).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def net_namespaces() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.add(os.stat(entry / "ns" / "net").st_ino)
            except OSError:
                continue
    return found


def cgroup_dirs() -> set[str]:
    """Every cgroup directory, as ``<hierarchy>:<path>``."""
    found = set()
    for point, fstype in mounts():
        if fstype not in ("cgroup", "cgroup2"):
            continue
        for dirpath, _dirs, _files in os.walk(point):
            found.add(f"{point}:{dirpath[len(point):] or '/'}")
    return found


def firewall() -> dict[str, list[str]]:
    """Rules of every iptables flavour on the machine, counters stripped; ipset names."""
    out: dict[str, list[str]] = {}
    for tool in ("iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"):
        path = shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin")
        if path is None:
            continue
        text = subprocess.run([path], capture_output=True, text=True, timeout=30, check=False).stdout
        out[tool] = sorted(re.sub(r"\[\d+:\d+\]", "", line) for line in text.splitlines()
                           if line and not line.startswith("#"))
    ipset = shutil.which("ipset", path="/usr/sbin:/sbin")
    if ipset:
        text = subprocess.run([ipset, "list", "-n"], capture_output=True, text=True, timeout=30, check=False).stdout
        out["ipset"] = sorted(text.split())
    return out


def sysctls() -> dict[str, str]:
    values = {}
    for dirpath, _dirs, files in os.walk("/proc/sys"):
        for name in files:
            path = os.path.join(dirpath, name)
            key = path[len("/proc/sys/"):].replace("/", ".")
            if VOLATILE_SYSCTL.match(key):
                continue
            try:
                with open(path) as fh:
                    values[key] = fh.read().strip()
            except OSError:
                continue
    return values


def cluster_processes(markers: tuple[str, ...], ns_inodes: set[int], cgroup_root: str) -> dict[int, str]:
    """Processes that belong to a cluster: in one of ``ns_inodes`` (net or mnt), in a cgroup whose path
    contains ``cgroup_root``, or whose command line mentions one of ``markers`` (state dir, binaries)."""
    found = {}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroup = (entry / "cgroup").read_text()
            inodes = {os.stat(entry / "ns" / k).st_ino for k in ("net", "mnt")}
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        if inodes & ns_inodes or cgroup_root in cgroup or any(m in cmdline for m in markers):
            found[int(entry.name)] = cmdline[:200]
    return found


@dataclass
class HostState:
    mounts: set[tuple[str, str]]
    links: set[str]
    net_namespaces: set[int]
    cgroups: set[str]
    firewall: dict[str, list[str]]
    sysctls: dict[str, str]
    volatile: set[str] = field(default_factory=set)

    @classmethod
    def capture(cls) -> HostState:
        first = sysctls()
        time.sleep(1.0)
        state = cls(mounts=mounts(), links=links(), net_namespaces=net_namespaces(), cgroups=cgroup_dirs(),
                    firewall=firewall(), sysctls=sysctls())
        # whatever moved within a second on its own is not judged
        state.volatile = {k for k, v in first.items() if state.sysctls.get(k) != v}
        return state


def diff(before: HostState, after: HostState, cgroup_root: str) -> list[str]:
    """What ``after`` has that ``before`` had not (or changed), as readable lines; empty when clean.

    New cgroups are judged when they are a new top-level tree or below the cluster's cgroup root or a
    ``kubepods`` directory: this machine creates and deletes cgroups of its own all the time.
    """
    problems = [f"mount left: {m}" for m in sorted(after.mounts - before.mounts)]
    problems += [f"network link left: {n}" for n in sorted(after.links - before.links)]
    problems += [f"network namespace left: inode {n}" for n in sorted(after.net_namespaces - before.net_namespaces)]
    top_before = {c.split(":", 1)[0] + ":" + "/".join(c.split(":", 1)[1].split("/")[:2]) for c in before.cgroups}
    for c in sorted(after.cgroups - before.cgroups):
        hier, path = c.split(":", 1)
        top = hier + ":" + "/".join(path.split("/")[:2])
        if top not in top_before or "kubepods" in path or cgroup_root.strip("/") in path:
            problems.append(f"cgroup left: {c}")
    for tool in sorted(set(before.firewall) | set(after.firewall)):
        added = sorted(set(after.firewall.get(tool, [])) - set(before.firewall.get(tool, [])))
        problems += [f"{tool} left: {line}" for line in added]
    skip = before.volatile | after.volatile
    for key in sorted(set(before.sysctls) & set(after.sysctls) - skip):
        if before.sysctls[key] != after.sysctls[key]:
            problems.append(f"sysctl {key} changed: {before.sysctls[key]!r} -> {after.sysctls[key]!r}")
    return problems
