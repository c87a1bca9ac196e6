"""The kill switch: when set, every running experiment rolls back and no new fault or run starts.

``resilience halt`` sets it, ``resilience resume`` clears it. Where it lives depends on the target:

- **local**: the file ``HALT`` in the fault journal's directory (``fault_state_dir``,
  ``RESILIENCE_STATE_DIR``), so it reaches every run that shares that journal, whatever its stack;
- **kubernetes**: the key ``halt`` of the ConfigMap ``sql-audit-resilience-control`` (the key
  ``k8s_control_configmap`` names another) in ``k8s_namespace``; empty or missing means not halted.

Its value says who set it, when and why (JSON). Three places obey it: the run's safeguard monitor
(``resilience/safeguards.py``) interrupts the experiment within a second of seeing it, so the
rollbacks run; :func:`faults.engine.inject` refuses to apply a fault while it is set; and the
run's watchdog reverts every open fault of a local run on its next round, even when the runner
itself is stuck. The CLI refuses new runs (exit 2).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from target.settings import TargetSettings

logger = logging.getLogger(__name__)

__all__ = ["CONFIGMAP", "HALT_FILE", "Halt", "HaltedError", "halt", "halt_file", "local_status", "refuse_if_halted",
           "resume", "status"]

HALT_FILE = "HALT"
CONFIGMAP = "sql-audit-resilience-control"
KEY = "halt"


class HaltedError(ActivityFailed):
    """The kill switch is set: nothing may be injected and no run may start."""


@dataclass(frozen=True)
class Halt:
    """A set kill switch: where, since when, by whom and why."""

    where: str
    at: float | None
    by: str
    reason: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.at)) if self.at else "an unknown time"
        return f"halted by the kill switch ({self.where}) since {when} by {self.by}: {self.reason or 'no reason given'}"

    def as_dict(self) -> dict[str, Any]:
        return {"where": self.where, "at": self.at, "by": self.by, "reason": self.reason}


def halt_file(state_dir: Path) -> Path:
    """The local kill-switch file of the journal at ``state_dir``."""
    return Path(state_dir) / HALT_FILE


def _parse(text: str, where: str) -> Halt:
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            return Halt(where, float(data["at"]) if data.get("at") else None, str(data.get("by") or "?"),
                        str(data.get("reason") or ""))
    except (ValueError, TypeError):
        pass
    return Halt(where, None, "?", text.strip()[:300])  # set by hand: any content halts


def local_status(state_dir: Path) -> Halt | None:
    """The local kill switch of ``state_dir``, or ``None`` when it is not set (one ``stat``; cheap)."""
    path = halt_file(state_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Halt(str(path), None, "?", f"unreadable kill-switch file: {exc}")  # unreadable still halts
    return _parse(text, str(path))


def _kube_names(settings: TargetSettings) -> tuple[str, str]:
    keys = settings.kubernetes_keys
    return str(keys.get("k8s_namespace") or "sql-audit"), str(keys.get("k8s_control_configmap") or CONFIGMAP)


def status(settings: TargetSettings) -> Halt | None:
    """The kill switch of the target ``settings`` point at, or ``None`` when it is not set.

    Raises:
        ActivityFailed: kubernetes: the ConfigMap could not be read (the message names it and the cluster).
    """
    if settings.target != "kubernetes":
        return local_status(settings.fault_state_dir)
    from faults.kubernetes.client import Kube

    namespace, name = _kube_names(settings)
    with Kube(settings.journal_configuration(), "kill switch") as kube:
        cm = kube.read_configmap(namespace, name)
    value = ((cm.data or {}).get(KEY) if cm is not None else None) or ""
    return _parse(value, f"ConfigMap {namespace}/{name} key {KEY}") if value.strip() else None


def _stamp(reason: str) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"at": time.time(), "by": f"{user}@{socket.gethostname()} (pid {os.getpid()})", "reason": reason}


def halt(settings: TargetSettings, reason: str = "") -> Halt:
    """Set the kill switch (again, if set: the new reason wins). Returns what was set.

    Raises:
        OSError: local: the file could not be written; ActivityFailed: kubernetes: the patch failed.
    """
    value = json.dumps(_stamp(reason))
    if settings.target == "kubernetes":
        from faults.kubernetes.client import Kube

        namespace, name = _kube_names(settings)
        with Kube(settings.journal_configuration(), "kill switch") as kube:
            kube.patch_configmap(namespace, name, {"data": {KEY: value}}, f"{KEY}=set")
        where = f"ConfigMap {namespace}/{name} key {KEY}"
    else:
        path = halt_file(settings.fault_state_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{HALT_FILE}.{os.getpid()}.tmp")
        tmp.write_text(value + "\n")
        os.replace(tmp, path)
        where = str(path)
    logger.info("kill switch set (%s): %s", where, reason or "no reason given")
    return _parse(value, where)


def resume(settings: TargetSettings) -> Halt | None:
    """Clear the kill switch; returns what was cleared (``None``: it was not set)."""
    current = status(settings)
    if current is None:
        return None
    if settings.target == "kubernetes":
        from faults.kubernetes.client import Kube

        namespace, name = _kube_names(settings)
        with Kube(settings.journal_configuration(), "kill switch") as kube:
            kube.patch_configmap(namespace, name, {"data": {KEY: ""}}, f"{KEY}=cleared")
    else:
        halt_file(settings.fault_state_dir).unlink(missing_ok=True)
    logger.info("kill switch cleared (%s)", current.where)
    return current


def refuse_if_halted(settings: TargetSettings, what: str) -> None:
    """Raise :class:`HaltedError` naming ``what`` when the kill switch of ``settings`` is set."""
    current = status(settings)
    if current is not None:
        raise HaltedError(f"{what}: refused: {current.describe()}; `resilience resume` allows it again")
