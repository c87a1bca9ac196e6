"""The machine's global sysctls: kept away from the kubelet, saved before ``up``, restored by ``down``.

At start-up the kubelet sets machine-wide kernel tunables (``vm.overcommit_memory=1``,
``kernel.panic=10``, ``kernel.panic_on_oops=1`` — the last turns any kernel oops into a reboot).
Two guards:

1. Masks: in the node's mount namespace each of those ``/proc/sys`` files is covered by a bind
   mount of a plain file (:func:`write_masks`), so the kubelet "sets" a file and the kernel's value
   never changes — whatever happens to the cluster (a restart loop, ``kill -9``).
2. A snapshot of the host's values taken by ``up`` (:func:`save_snapshot`), compared by
   ``status`` and restored by ``down`` (:func:`restore_snapshot`).

Network sysctls (``net.*``) that the components set are per network namespace: they change the
node's namespace only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

PROC_SYS = Path("/proc/sys")
# What the kubelet's container manager writes (pkg/kubelet/cm setupKernelTunables), machine-wide.
KUBELET_TUNABLES = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
                    "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes")
# Also global, and written by kube-proxy unless its conntrack settings are 0 (ours are): watched only.
WATCHED = (*KUBELET_TUNABLES, "net.netfilter.nf_conntrack_max")


def sysctl_path(key: str) -> Path:
    return PROC_SYS / key.replace(".", "/")


def read(key: str) -> str | None:
    """The value as the kernel prints it, or ``None`` when this kernel has no such key."""
    try:
        return sysctl_path(key).read_text().strip()
    except OSError:
        return None


def snapshot(keys: tuple[str, ...] = WATCHED) -> dict[str, str]:
    """``{key: value}`` for each key this kernel has."""
    return {k: v for k in keys if (v := read(k)) is not None}


def save_snapshot(path: Path) -> dict[str, str]:
    """Save the host's values to ``path`` unless a snapshot is already there (an ``up`` after an
    interrupted one must not save values the first one may have changed); returns the saved values."""
    if path.exists():
        return load_snapshot(path)
    values = snapshot()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2))
    tmp.replace(path)
    return values


def load_snapshot(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()}


def drift(saved: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Keys whose current value differs from ``saved``: ``{key: (saved, now)}``."""
    return {k: (v, now) for k, v in saved.items() if (now := read(k)) != v}


def restore_snapshot(path: Path) -> dict[str, tuple[str, str | None]]:
    """Write back every saved value that changed, then delete the snapshot; returns what was restored.

    Raises ``OSError`` when a value cannot be written back (the snapshot is kept for the next try).
    """
    saved = load_snapshot(path)
    changed = drift(saved)
    for key, (value, now) in changed.items():
        logger.warning("sysctl %s was changed to %s while the cluster ran: restoring %s", key, now, value)
        sysctl_path(key).write_text(value)
    left = drift(saved)
    if left:
        raise OSError(f"sysctls not restored: {left} (snapshot kept in {path})")
    path.unlink(missing_ok=True)
    return changed


def write_masks(mask_dir: Path) -> dict[str, Path]:
    """A plain file per kubelet tunable holding the host's current value; returns ``{key: file}``.

    The caller bind-mounts each file over its ``/proc/sys`` entry inside the node's mount namespace.
    """
    mask_dir.mkdir(parents=True, exist_ok=True)
    masks: dict[str, Path] = {}
    for key in KUBELET_TUNABLES:
        value = read(key)
        if value is None:
            continue
        file = mask_dir / key
        file.write_text(value + "\n")
        masks[key] = file
    return masks
