"""Who runs a run, whether it still lives, and the processes it started that must die with it.

A run's *owners* are the processes that recorded it in the fault journal: the one that created
``run.json`` and each one that injected a fault still open (their pid, start time and pid namespace, so a
recycled pid is not taken for them). A run *lives* while one of its owners does and its heartbeat
is fresh; the watchdog (:mod:`faults.watchdog`) reverts the run's faults as soon as it does not. An owner in
another pid namespace (a runner in another pod sharing the journal's volume) cannot be looked up by pid: then
the heartbeat alone decides.

A *companion* is a process the run started that must not outlive it: the load generator. The
runner registers it before the experiment (:func:`register`) by where its handle will be — a JSON
file holding its ``pid`` (and ``started_at``) — and how to ask it to stop (a file it watches for);
the watchdog stops the companions of a dead run (:func:`stop`): the stop file first (a graceful
stop: the load generator flushes its ledger), then SIGINT, then SIGKILL to its process group.
:func:`finish` says the run is over, so its watchdog may leave.

Layout, next to the journal (:mod:`faults.journal`)::

    <state_dir>/<run_id>/companions/<name>.json   one registered companion
    <state_dir>/<run_id>/ended                     the run finished (its mtime: when)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from faults import journal
from target.settings import TargetSettings

logger = logging.getLogger(__name__)

STOP_GRACE_S = 12.0
"""Seconds a companion gets to stop by its stop file before SIGINT (the load's own stop takes up to 10)."""
SIGINT_GRACE_S = 5.0
"""Seconds after SIGINT before SIGKILL to its process group."""
START_SLACK_S = 5.0
"""How far a process's start may lie from the ``started_at`` its handle records and still be it."""


@dataclass(frozen=True)
class Owner:
    """A process that owns a run (pid, start time and pid namespace; ``None`` when the record predates them)."""

    pid: int
    started: float | None
    pid_ns: str | None = None

    @property
    def foreign(self) -> bool:
        """Whether its pid belongs to another pid namespace than ours (it cannot be looked up from here)."""
        return self.pid_ns is not None and self.pid_ns != journal.pid_namespace()

    def alive(self) -> bool:
        """Whether this very process still runs (a zombie does not; a recycled pid is not it). Not for a foreign
        owner: its pid names some other process here."""
        return process_alive(self.pid, self.started)


def process_alive(pid: int, started: float | None, slack: float = 0.01) -> bool:
    """Whether ``pid`` runs, is no zombie and, when ``started`` is known, started then (within ``slack`` s)."""
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - float(started)) <= slack
    except (psutil.Error, ValueError, TypeError):
        return False


def _companions_dir(state_dir: Path, run_id: str) -> Path:
    return journal.run_dir(state_dir, run_id) / "companions"


def _ended_path(state_dir: Path, run_id: str) -> Path:
    return journal.run_dir(state_dir, run_id) / "ended"


def owners(state_dir: Path, run_id: str) -> list[Owner]:
    """The processes that own run ``run_id``: its creator, the injectors of its open faults, and who
    registered its companions."""
    found: set[Owner] = set()
    meta = journal.run_meta(state_dir, run_id)
    if meta.get("pid"):
        found.add(Owner(int(meta["pid"]), meta.get("pid_started"), meta.get("pid_ns")))
    for _, entry in journal.open_entries(state_dir, run_id):
        if entry.get("pid"):
            found.add(Owner(int(entry["pid"]), entry.get("pid_started"), entry.get("pid_ns")))
    for companion in registered(state_dir, run_id):
        owner = companion.get("owner") or {}
        if owner.get("pid"):
            found.add(Owner(int(owner["pid"]), owner.get("started"), owner.get("pid_ns")))
    return sorted(found, key=lambda o: o.pid)


def why_dead(state_dir: Path, run_id: str, heartbeat_timeout: float) -> str | None:
    """Why run ``run_id`` counts as dead (every owner gone, or a heartbeat older than ``heartbeat_timeout``
    s: a hung runner, or one in another pid namespace that stopped beating), or ``None`` while it lives."""
    known = owners(state_dir, run_id)
    if known and not any(o.foreign for o in known) and not any(o.alive() for o in known):
        return f"runner gone (pid {', '.join(str(o.pid) for o in known)})"
    age = journal.heartbeat_age(state_dir, run_id)
    if age is None:
        return "no heartbeat ever written"
    if age > heartbeat_timeout:
        return f"heartbeat {age:.1f} s old (timeout {heartbeat_timeout:g} s)"
    return None


def register(settings: TargetSettings, name: str, handle: Path, stop_file: Path | None, match: str) -> Path:
    """Register a process the run starts (or will start) that must die with the run; returns the record's path.

    Args:
        name: what it is (``load``), the record's file name.
        handle: the JSON file that holds its ``pid`` once it runs (and ``started_at``, epoch seconds).
        stop_file: a file whose appearance makes it stop gracefully (``None``: signals only).
        match: a word its command line must contain (a recycled pid is never signalled).

    Also starts this process's heartbeat of the run, so the watchdog can tell a hung runner.
    """
    journal.ensure_run(settings)
    journal.start_heartbeat(settings)
    path = _companions_dir(settings.fault_state_dir, settings.run_id) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "handle": str(handle), "stop_file": str(stop_file) if stop_file else None,
              "match": match, "registered_at": time.time(),
              "owner": {"pid": os.getpid(), "started": journal.process_started(), "pid_ns": journal.pid_namespace()}}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(path)
    _ended_path(settings.fault_state_dir, settings.run_id).unlink(missing_ok=True)
    return path


def registered(state_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The companions registered for run ``run_id``."""
    found = []
    for path in sorted(_companions_dir(state_dir, run_id).glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            found.append(dict(json.loads(path.read_text())))
    return found


def finish(settings: TargetSettings) -> None:
    """The run is over: mark it ended (its watchdog leaves once no fault is open) and stop its heartbeat."""
    path = _ended_path(settings.fault_state_dir, settings.run_id)
    if journal.run_dir(settings.fault_state_dir, settings.run_id).is_dir():
        path.touch()
    journal.stop_heartbeat(settings)


def ended(state_dir: Path, run_id: str) -> bool:
    """Whether the run said it is over (:func:`finish`)."""
    return _ended_path(state_dir, run_id).exists()


def process(companion: dict[str, Any]) -> psutil.Process | None:
    """The live process of ``companion`` (from its handle), or ``None``: not started, gone, or a pid
    recycled by another program."""
    try:
        data = json.loads(Path(companion["handle"]).read_text())
        pid = int(data["pid"])
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if str(companion.get("match") or "") not in " ".join(proc.cmdline()):
            return None
        started = data.get("started_at")
        if started is not None and abs(proc.create_time() - float(started)) > START_SLACK_S:
            return None
        return proc
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None


def request_stop(companion: dict[str, Any]) -> bool:
    """Ask ``companion`` to stop gracefully (create its stop file); ``False`` when it does not run."""
    proc = process(companion)
    if proc is None:
        return False
    if companion.get("stop_file"):
        with contextlib.suppress(OSError):
            Path(companion["stop_file"]).touch()
    return True


def stop(companion: dict[str, Any], grace_s: float = STOP_GRACE_S) -> str:
    """Stop ``companion``: its stop file, then SIGINT after ``grace_s``, then SIGKILL to its process group
    after :data:`SIGINT_GRACE_S`. Returns what was done (``"not running"`` when there was nothing)."""
    proc = process(companion)
    if proc is None:
        return "not running"
    name, pid = companion.get("name"), proc.pid
    request_stop(companion)
    steps = ["stop file" if companion.get("stop_file") else "no stop file"]
    for sig, wait in ((None, grace_s), (signal.SIGINT, SIGINT_GRACE_S), (signal.SIGKILL, 10.0)):
        if sig is not None:
            if process(companion) is None:
                break
            steps.append(signal.Signals(sig).name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if sig == signal.SIGKILL and os.getpgid(pid) == pid:
                    os.killpg(pid, sig)  # forked workers too
                else:
                    os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while process(companion) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process(companion) is None:
            break
    done = f"{name} pid {pid}: {' -> '.join(steps)}" + (" (still alive!)" if process(companion) else ", stopped")
    logger.warning("stopped companion of a dead run: %s", done)
    return done


def stop_all(state_dir: Path, run_id: str) -> list[str]:
    """Stop every live companion of run ``run_id`` (stop files first, all at once); what was done."""
    live = [c for c in registered(state_dir, run_id) if request_stop(c)]
    return [stop(c) for c in live]


def live_runs(state_dir: Path, run_ids: list[str], default_timeout: float) -> dict[str, str]:
    """Those of ``run_ids`` that are still at work, each with why it counts as alive.

    A run is at work while it has an open fault or has not said it ended, and :func:`why_dead` finds no reason it
    is dead. One that looks alive gets twice its heartbeat timeout (``run.json``'s, else ``default_timeout``) to
    be found dead: a runner in another pod killed a moment ago still has a fresh heartbeat, and only its age can
    tell (its pid means nothing here). ``resilience cleanup --dead-only`` leaves these runs alone.
    """
    alive = {}
    for run_id in run_ids:
        over = ended(state_dir, run_id)
        if over and not journal.open_entries(state_dir, run_id):
            continue
        timeout = float(journal.run_meta(state_dir, run_id).get("heartbeat_timeout") or default_timeout)
        deadline = time.monotonic() + 2 * timeout
        while why_dead(state_dir, run_id, timeout) is None:
            if time.monotonic() >= deadline:
                known = owners(state_dir, run_id)
                age = journal.heartbeat_age(state_dir, run_id)
                who = ", ".join(f"pid {o.pid}" + (" in another pid namespace" if o.foreign else "") for o in known)
                alive[run_id] = (f"heartbeat {age:.1f} s old" if age is not None else "no heartbeat") + \
                    f" (timeout {timeout:g} s), owners: {who or 'none recorded'}" + \
                    ("" if over else ", not ended")
                break
            time.sleep(0.2)
    return alive


def stop_dead(state_dir: Path, run_ids: list[str]) -> list[str]:
    """Stop the live companions of every run in ``run_ids`` that is dead (``resilience cleanup``); what was done."""
    done = []
    for run_id in run_ids:
        live = [c for c in registered(state_dir, run_id) if process(c) is not None]
        if not live:
            continue
        timeout = float(journal.run_meta(state_dir, run_id).get("heartbeat_timeout") or 0) or None
        dead = why_dead(state_dir, run_id, timeout if timeout is not None else float("inf"))
        if dead:
            done += [f"run {run_id} ({dead}): {stop(c)}" for c in live]
    return done
