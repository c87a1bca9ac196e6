"""The fault journal: an on-disk record of every fault, written before the fault is applied.

Layout (under the state directory, outside git; see :mod:`target.settings`)::

    <state_dir>/<run_id>/run.json            run id, heartbeat timeout, creating pid (and its start time), target key
    <state_dir>/<run_id>/heartbeat           its mtime is the run's heartbeat
    <state_dir>/<run_id>/watchdog.lock       held (flock) by the run's watchdog while it lives
    <state_dir>/<run_id>/faults/<id>.json    one entry per applied fault

An entry says what was done (``action``, ``parameters``), on which stack
(``stack``, see :func:`stack_identity`; ``configuration``: the keys that reach it again),
what undoes it (``undo``: an idempotent remove activity and its arguments),
whether it is over the moment it happens (``instant``: a kill; what follows is recovery),
its times in epoch seconds with an ISO-8601 twin for people (``created_at``, ``expires_at``:
null without a duration, ``reverted_at``: null while open; ``*_iso``) and its ``status``:
``applying`` (recorded, being applied), ``active``, ``reverted`` or ``failed``
(the apply raised and was undone). Entries are rewritten atomically (write +
rename), so a killed writer never leaves half a record. ``applying`` and
``active`` entries are *open*: cleanup and the watchdog revert them.
"""

import contextlib
import contextvars
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from stack.endpoints import DEFAULT_PORT_BASE
from target.settings import TargetSettings

logger = logging.getLogger(__name__)

OPEN = ("applying", "active")

Entry = dict[str, Any]


def run_dir(state_dir: Path, run_id: str) -> Path:
    """Directory of run ``run_id`` in the journal at ``state_dir``."""
    return state_dir / run_id


def heartbeat_path(state_dir: Path, run_id: str) -> Path:
    """The file whose mtime is the heartbeat of run ``run_id``."""
    return run_dir(state_dir, run_id) / "heartbeat"


def _atomic_write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def ensure_run(settings: TargetSettings) -> Path:
    """Create the run directory and ``run.json`` if missing; returns the run directory."""
    rdir = run_dir(settings.fault_state_dir, settings.run_id)
    meta = rdir / "run.json"
    if not meta.exists():
        _atomic_write(meta, {"run_id": settings.run_id, "created_at": _iso(time.time()), "pid": os.getpid(),
                             "pid_started": process_started(), "pid_ns": pid_namespace(),
                             "heartbeat_timeout": settings.heartbeat_timeout,
                             "target": settings.target_key})
    touch_heartbeat(settings.fault_state_dir, settings.run_id)
    return rdir


def run_meta(state_dir: Path, run_id: str) -> dict[str, Any]:
    """``run.json`` of a run (empty dict when missing or unreadable)."""
    try:
        return json.loads((run_dir(state_dir, run_id) / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def touch_heartbeat(state_dir: Path, run_id: str) -> None:
    """Record that the run is alive now."""
    path = heartbeat_path(state_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path)


def heartbeat_age(state_dir: Path, run_id: str) -> float | None:
    """Seconds since the run's last heartbeat, ``None`` if it never had one."""
    try:
        return max(0.0, time.time() - heartbeat_path(state_dir, run_id).stat().st_mtime)
    except OSError:
        return None


def process_started() -> float | None:
    """This process's start time (epoch seconds, as psutil reports it): with the pid, it tells the
    process that wrote a record from a later one that reused its pid."""
    try:
        return float(psutil.Process().create_time())
    except psutil.Error:
        return None


def pid_namespace() -> str | None:
    """This process's pid namespace (``pid:[4026531836]``), ``None`` where /proc does not say.

    Recorded beside every pid of the journal: a pid means something only in its own namespace. Two runner pods
    sharing a journal volume each see their runner as pid 1, so a pid recorded by another pod is neither alive
    nor dead here; only the run's heartbeat (a file on the shared volume) tells (:mod:`faults.companions`).
    """
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def new_entry(settings: TargetSettings, action: str, parameters: dict[str, Any], undo: dict[str, Any],
              duration: float | None, plan: dict[str, Any], instant: bool = False) -> tuple[Path, Entry]:
    """Record a fault about to be applied (status ``applying``); returns its path and content."""
    now = time.time()
    entry_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}-{action.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:8]}"
    expires = now + duration if duration else None
    entry: Entry = {
        "id": entry_id,
        "run_id": settings.run_id,
        "target": settings.target,
        "fault": action.split(".")[1] if action.count(".") >= 2 else action,
        "action": action,
        "parameters": parameters,
        "undo": undo,
        "configuration": settings.journal_configuration(),
        "stack": settings_stack(settings),
        "instant": instant,
        "created_at": now,
        "created_at_iso": _iso(now),
        "expires_at": expires,
        "expires_at_iso": _iso(expires) if expires else None,
        "reverted_at": None,
        "reverted_at_iso": None,
        "status": "applying",
        "plan": plan,
        "details": None,
        "pid": os.getpid(),
        "pid_started": process_started(),
        "pid_ns": pid_namespace(),
    }
    ensure_run(settings)
    path = run_dir(settings.fault_state_dir, settings.run_id) / "faults" / f"{entry_id}.json"
    _atomic_write(path, entry)
    return path, entry


def close(path: Path, by: str, error: str | None = None) -> Entry | None:
    """Mark the entry at ``path`` reverted now, by ``by`` (and with the ``error`` a failed attempt left)."""
    now = time.time()
    changes: dict[str, Any] = {"status": "reverted", "reverted_at": now, "reverted_at_iso": _iso(now),
                               "reverted_by": by}
    if error is not None:
        changes["error"] = error
    return update(path, **changes)


def created_at(entry: Entry) -> float:
    """When the entry was recorded, in epoch seconds."""
    return float(entry.get("created_at") or 0.0)


@dataclass(frozen=True)
class FaultWindow:
    """When a run's first fault started and ended (epoch seconds), and every fault the run applied."""

    name: str
    start: float
    end: float | None
    faults: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start, "end": self.end, "faults": self.faults}


def fault_window(state_dir: Path, run_id: str) -> FaultWindow | None:
    """The window of run ``run_id``'s first fault, by the one rule every verdict uses.

    A fault that is over the moment it happens (``instant``: a SIGKILL, an OOM kill — what
    follows is recovery) ends where it starts; any other ends when it was reverted or when it
    expired, whichever came first; ``end`` is ``None`` while it is still open without expiry.
    ``None`` when the run applied no fault.
    """
    found = entries(state_dir, run_id)
    if not found:
        return None
    first = found[0][1]
    start = created_at(first)
    ends = [float(t) for t in (first.get("expires_at"), first.get("reverted_at")) if t]
    end = start if first.get("instant") else (min(ends) if ends else None)
    return FaultWindow(str(first.get("action")), start, end, [str(e.get("action")) for _, e in found])


def read(path: Path) -> Entry | None:
    """The entry at ``path``, or ``None`` if it is gone or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def update(path: Path, **changes: Any) -> Entry | None:
    """Rewrite the entry at ``path`` with ``changes``; returns the new content (``None`` if gone)."""
    entry = read(path)
    if entry is None:
        return None
    if entry.get("status") == "reverted" and changes.get("status") in OPEN:
        return entry  # a revert that raced ahead wins: never reopen a closed entry
    entry.update(changes)
    _atomic_write(path, entry)
    return entry


def entries(state_dir: Path, run_id: str | None = None) -> list[tuple[Path, Entry]]:
    """All entries (oldest first), of one run or of every run in ``state_dir``."""
    if run_id is not None:
        dirs = [run_dir(state_dir, run_id)]
    else:
        dirs = sorted(p for p in state_dir.iterdir() if p.is_dir()) if state_dir.is_dir() else []
    found: list[tuple[Path, Entry]] = []
    for d in dirs:
        for path in sorted((d / "faults").glob("*.json")):
            entry = read(path)
            if entry is not None:
                found.append((path, entry))
    found.sort(key=lambda pe: created_at(pe[1]))
    return found


def open_entries(state_dir: Path, run_id: str | None = None, port_base: int | None = None) -> list[tuple[Path, Entry]]:
    """Entries still ``applying`` or ``active``, optionally only those of the local stack at ``port_base``."""
    return [(p, e) for p, e in entries(state_dir, run_id)
            if e.get("status") in OPEN and (port_base is None or on_local_stack(e, port_base))]


# ------------------------------------------------------------------ stack identity
def stack_identity(target: str, configuration: dict[str, Any]) -> dict[str, Any]:
    """Which stack a fault of ``target`` with these configuration keys acts on.

    ``{"target": "local", "port_base": N, "data_dir": DIR or None}`` for the embedded stack
    (``data_dir`` as configured: ``None`` means the default of the port base);
    ``{"target": "kubernetes", "context": CTX, "namespace": NS}`` for a cluster, ``context`` being the
    one a client would use (``k8s_context``, ``in-cluster``, else the kubeconfig's current context,
    ``None`` if unreadable) and ``namespace`` the audit service's (``k8s_namespace``).
    Two entries are on the same stack when these dicts are equal.
    """
    if target == "kubernetes":
        from chaoslib.exceptions import ActivityFailed

        from target.kubernetes import KubeSettings, context_in_use

        try:
            context = context_in_use(KubeSettings.from_configuration(configuration))
        except ActivityFailed:  # a bad key: the fault never ran with it; keep what was said
            context = str(configuration.get("k8s_context") or "") or None
        namespace = str(configuration.get("k8s_namespace") or "").strip() or None
        return {"target": target, "context": context, "namespace": namespace}
    data_dir = configuration.get("stack_data_dir")
    return {"target": target, "port_base": int(configuration.get("stack_port_base", DEFAULT_PORT_BASE)),
            "data_dir": str(data_dir) if data_dir else None}


def settings_stack(settings: TargetSettings) -> dict[str, Any]:
    """The :func:`stack_identity` of the stack ``settings`` point at (what a new entry records)."""
    if settings.target == "kubernetes":
        return stack_identity(settings.target, settings.kubernetes_keys)
    return {"target": settings.target, "port_base": settings.stack_port_base,
            "data_dir": str(settings.stack_data_dir) if settings.stack_data_dir else None}


def entry_stack(entry: Entry) -> dict[str, Any]:
    """The :func:`stack_identity` of the stack ``entry`` was applied to.

    Entries written before the identity carried a target (``stack`` was ``{port_base, data_dir}``
    for every target) still work: a local one keeps its recorded port base and data dir; a
    kubernetes one gets its context and namespace from its journaled ``configuration`` (the
    ``k8s_*`` keys), the context resolved now when the entry named none.
    """
    stack = entry.get("stack") or {}
    if "target" in stack:
        return dict(stack)
    target = str(entry.get("target") or "local")
    if target == "kubernetes":
        return stack_identity(target, dict(entry.get("configuration") or {}))
    return {"target": target, "port_base": stack.get("port_base"), "data_dir": stack.get("data_dir")}


def on_local_stack(entry: Entry, port_base: int) -> bool:
    """Whether ``entry`` was applied to the local stack at ``port_base`` (whatever its data dir)."""
    stack = entry_stack(entry)
    return stack["target"] == "local" and stack.get("port_base") == port_base


def describe_stack(stack: dict[str, Any]) -> str:
    """A stack identity for people: ``local stack at port base 19000``, ``kubernetes context x, namespace y``."""
    if stack.get("target") == "kubernetes":
        return f"kubernetes context {stack.get('context')}, namespace {stack.get('namespace')}"
    where = f" (data dir {stack['data_dir']})" if stack.get("data_dir") else ""
    return f"{stack.get('target')} stack at port base {stack.get('port_base')}{where}"


def same_stack(entry: Entry, settings: TargetSettings) -> bool:
    """Whether ``entry`` was applied to the stack ``settings`` points at (see :func:`stack_identity`)."""
    return entry_stack(entry) == settings_stack(settings)


_reverter: contextvars.ContextVar[str | None] = contextvars.ContextVar("fault_reverter", default=None)


@contextlib.contextmanager
def reverting_as(by: str) -> Iterator[None]:
    """Within: the remove activities close the entries they undo as ``by`` (the watchdog, an expiry timer, a
    cleanup calling them), not as themselves, so an entry says who reverted it from its first write."""
    token = _reverter.set(by)
    try:
        yield
    finally:
        _reverter.reset(token)


def reverter() -> str | None:
    """Who asked for the undo running now (:func:`reverting_as`), ``None`` for a run's own rollback."""
    return _reverter.get()


def mark_reverted(settings: TargetSettings, undo: dict[str, Any], by: str) -> list[str]:
    """Close every open entry, in any run, on this stack (:func:`stack_identity`) whose undo is exactly ``undo``.

    Called by the remove activities after they succeeded; returns the ids closed.
    """
    closed = []
    stack = settings_stack(settings)
    for path, entry in open_entries(settings.fault_state_dir):
        if entry.get("undo") == undo and entry_stack(entry) == stack:
            close(path, by)
            closed.append(str(entry["id"]))
    return closed


# --------------------------------------------------------------------- heartbeat
class _Heartbeat(threading.Thread):
    def __init__(self, state_dir: Path, run_id: str, interval: float) -> None:
        super().__init__(name=f"fault-heartbeat-{run_id}", daemon=True)
        self.state_dir, self.run_id, self.interval = state_dir, run_id, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            with contextlib.suppress(OSError):
                touch_heartbeat(self.state_dir, self.run_id)


_heartbeats: dict[tuple[Path, str], _Heartbeat] = {}
_heartbeats_lock = threading.Lock()


def start_heartbeat(settings: TargetSettings) -> None:
    """Keep the run's heartbeat fresh from a daemon thread of this process.

    The thread dies with the process: a runner killed with SIGKILL stops
    beating, and the watchdog reverts its faults ``heartbeat_timeout`` later.
    """
    key = (settings.fault_state_dir, settings.run_id)
    with _heartbeats_lock:
        beat = _heartbeats.get(key)
        if beat is not None and beat.is_alive():
            return
        beat = _Heartbeat(settings.fault_state_dir, settings.run_id, max(0.2, settings.heartbeat_timeout / 5))
        _heartbeats[key] = beat
        beat.start()


def stop_heartbeat(settings: TargetSettings) -> None:
    """Stop this process's heartbeat thread of the run (the run is over; a later inject starts it again)."""
    with _heartbeats_lock:
        beat = _heartbeats.pop((settings.fault_state_dir, settings.run_id), None)
    if beat is not None:
        beat.stopped.set()
