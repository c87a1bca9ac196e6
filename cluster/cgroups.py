"""The kubelet's cgroup root: created in every hierarchy by ``up``, emptied and removed by ``down``.

The kubelet (``cgroupDriver: cgroupfs``, ``cgroupRoot: /<name>-k8s``) puts every pod below that
root, and runc creates the containers' cgroups there in every mounted hierarchy (cgroup v1, and
the v2 ``unified`` one on a hybrid machine). So everything the cluster adds to the cgroup trees is
below one directory per hierarchy, which ``down`` removes bottom-up.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cluster.netns import mount_points

logger = logging.getLogger(__name__)


def hierarchies() -> list[Path]:
    """Mount points of every cgroup (v1) and cgroup2 file system on the machine."""
    return [Path(point) for point, fstype in mount_points() if fstype in ("cgroup", "cgroup2")]


def create(root: str) -> None:
    """Make ``root`` in every hierarchy (the kubelet refuses a cgroupRoot that does not exist).

    A v1 cpuset child starts with no CPUs and no memory nodes: copy the parent's.
    """
    for hier in hierarchies():
        path = hier / root.lstrip("/")
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            own, parent = path / knob, hier / knob
            if own.exists() and not own.read_text().strip():
                own.write_text(parent.read_text())


def dirs(root: str) -> list[Path]:
    """Every cgroup directory at or below ``root``, deepest first."""
    found: list[Path] = []
    for hier in hierarchies():
        top = hier / root.lstrip("/")
        if top.is_dir():
            for dirpath, _dirnames, _files in os.walk(top):
                found.append(Path(dirpath))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def pids(root: str) -> set[int]:
    """Pids of every process in a cgroup at or below ``root`` (any hierarchy)."""
    found: set[int] = set()
    for d in dirs(root):
        try:
            found.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        except OSError:
            continue
    return found


def remove(root: str) -> list[str]:
    """Remove ``root`` and everything below it in every hierarchy; returns what could not be removed.

    A cgroup that still holds a process cannot be removed: kill the processes first (``down`` does).
    """
    left: list[str] = []
    for d in dirs(root):
        try:
            d.rmdir()
        except FileNotFoundError:
            continue
        except OSError as exc:
            left.append(f"{d}: {exc.strerror}")
    return left
