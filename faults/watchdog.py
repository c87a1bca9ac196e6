"""Detached helpers that revert faults when nobody else will: expiry timers and the run watchdog.

Both run as ``python -m faults.cli ...`` in a new session (``start_new_session``),
so a Ctrl-C or a SIGKILL of the runner does not reach them.

* **Expiry timer** (one per fault with a ``duration``): sleeps until the
  entry's ``expires_at`` and reverts it, e.g. sends SIGCONT to a stalled
  ClickHouse or removes a toxic. Exits early when the entry is closed.
* **Watchdog** (one per run, singleton by ``flock`` on ``watchdog.lock``): every
  ``POLL_S``, reverts expired entries (backup of the timers) and, when the run is
  dead — every process that owns it is gone, or its heartbeat is older than
  ``heartbeat_timeout`` (a hung runner) — every open entry of the run, and stops
  the processes the run started (its load: :mod:`faults.companions`). It exits when
  the run has no open entry and nothing more to watch (the run ended cleanly, or its
  companions are stopped), and gives up after ``GIVE_UP_S`` of failing reverts
  (``cleanup`` can still retry).
"""

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import psutil

from faults import companions, journal, killswitch
from target.settings import DEFAULT_HEARTBEAT_TIMEOUT, TargetSettings

logger = logging.getLogger(__name__)

POLL_S = 0.5
EXPIRY_GRACE_S = 2.0  # the watchdog lets the entry's own timer act first
GIVE_UP_S = 600.0
REPO_ROOT = Path(__file__).resolve().parent.parent

_children: list[subprocess.Popen[bytes]] = []


def _reap() -> None:
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)


def spawn_detached(args: list[str], log_path: Path) -> dict[str, Any]:
    """Start ``python -m faults.cli <args>`` in its own session; returns ``{"pid", "create_time", "log"}``."""
    _reap()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with log_path.open("ab") as log:
        child = subprocess.Popen([sys.executable, "-m", "faults.cli", *args], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                 cwd=str(REPO_ROOT), env=env)
    _children.append(child)
    try:
        created = psutil.Process(child.pid).create_time()
    except psutil.Error:
        created = None
    return {"pid": child.pid, "create_time": created, "log": str(log_path)}


def _lock_path(state_dir: Path, run_id: str) -> Path:
    return journal.run_dir(state_dir, run_id) / "watchdog.lock"


def _try_lock(path: Path) -> IO[str] | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def _unlock(fh: IO[str]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fh, fcntl.LOCK_UN)
    fh.close()


def watchdog_alive(state_dir: Path, run_id: str) -> bool:
    """Whether a watchdog holds the run's lock right now."""
    fh = _try_lock(_lock_path(state_dir, run_id))
    if fh is None:
        return True
    _unlock(fh)
    return False


def ensure_watchdog(settings: TargetSettings) -> dict[str, Any] | None:
    """Start the run's watchdog unless one is alive; returns the new one's pid info, else ``None``."""
    if watchdog_alive(settings.fault_state_dir, settings.run_id):
        return None
    rdir = journal.run_dir(settings.fault_state_dir, settings.run_id)
    info = spawn_detached(["watchdog", "--run", settings.run_id, "--state-dir", str(settings.fault_state_dir)],
                          rdir / "watchdog.log")
    logger.info("started watchdog pid %s for run %s (heartbeat timeout %g s)", info["pid"], settings.run_id,
                settings.heartbeat_timeout)
    return info


def spawn_timer(entry_path: Path) -> dict[str, Any]:
    """Start the detached expiry timer of the journal entry at ``entry_path``."""
    info = spawn_detached(["expire", str(entry_path)], entry_path.parent.parent / "timers.log")
    logger.debug("expiry timer pid %s for %s", info["pid"], entry_path.name)
    return info


def _ours(pid: int, create_time: float | None) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.01:
            return None
        if "faults.cli" not in " ".join(proc.cmdline()):
            return None
        return proc
    except psutil.Error:
        return None


def stop_timers(settings: TargetSettings, entry_ids: list[str]) -> None:
    """Terminate the expiry timers of closed entries (verified by pid, start time and command line)."""
    if not entry_ids:
        return
    wanted = set(entry_ids)
    for _, entry in journal.entries(settings.fault_state_dir):
        timer = entry.get("timer") or {}
        if entry.get("id") in wanted and timer.get("pid") and timer["pid"] != os.getpid():
            proc = _ours(int(timer["pid"]), timer.get("create_time"))
            if proc is not None:
                with contextlib.suppress(psutil.Error):
                    proc.terminate()
    _reap()


# ------------------------------------------------------------------ detached loops
def run_timer(entry_path: Path) -> int:
    """Body of an expiry timer: wait for the entry's expiry and revert it. Returns an exit code."""
    from faults.cleanup import revert_entry

    for _attempt in range(5):
        while True:
            entry = journal.read(entry_path)
            if entry is None or entry.get("status") not in journal.OPEN:
                return 0
            remaining = float(entry.get("expires_at") or 0) - time.time()
            if not entry.get("expires_at"):
                return 0
            if remaining <= 0:
                break
            time.sleep(min(0.5, remaining))
        if revert_entry(entry_path, entry, by=f"expiry timer (pid {os.getpid()})").ok:
            return 0
        time.sleep(2)
    return 1


def _warm_up() -> None:
    """Import every fault's public module (their undo activities and backends) while the run lives: a revert
    of a dead run's fault then starts at once instead of after a second of imports on a busy machine."""
    import importlib

    from faults import ACTIVITY_MODULES

    for name in ACTIVITY_MODULES:
        try:
            importlib.import_module(name)
            for target in ("local", "kubernetes"):
                with contextlib.suppress(ImportError):
                    importlib.import_module(f"faults.{target}.{name.rsplit('.', 1)[-1]}")
        except Exception as exc:  # the revert imports it again and reports
            logger.info("warming up %s: %s", name, exc)


def _stop_companions(state_dir: Path, run_id: str, why: str) -> None:
    for done in companions.stop_all(state_dir, run_id):
        logger.warning("run %s is dead (%s): %s", run_id, why, done)


def run_watchdog(state_dir: Path, run_id: str, poll: float = POLL_S) -> int:
    """Body of the watchdog of run ``run_id`` (see module doc). Returns an exit code."""
    from faults.cleanup import revert_entry

    lock = _try_lock(_lock_path(state_dir, run_id))
    if lock is None:
        logger.info("watchdog for run %s already running; exiting", run_id)
        return 0
    logger.info("watchdog pid %s watching run %s in %s", os.getpid(), run_id, state_dir)
    t0 = time.monotonic()
    _warm_up()
    logger.info("watchdog ready (fault modules imported in %.1f s)", time.monotonic() - t0)
    failing_since: float | None = None
    stopper: threading.Thread | None = None
    try:
        while True:
            opened = journal.open_entries(state_dir, run_id)
            timeout = float(journal.run_meta(state_dir, run_id).get("heartbeat_timeout")
                            or DEFAULT_HEARTBEAT_TIMEOUT)
            dead = companions.why_dead(state_dir, run_id, timeout)
            if dead and stopper is None:
                # The load stops beside the reverts (a revert may take a minute: a broker starting again).
                stopper = threading.Thread(target=_stop_companions, args=(state_dir, run_id, dead),
                                           name="stop-companions")
                stopper.start()
            if not opened:
                if not dead and companions.registered(state_dir, run_id) and not companions.ended(state_dir, run_id):
                    time.sleep(poll)  # a live run holding a load: keep watching it
                    continue
                if stopper is not None:
                    stopper.join()
                # Release, then look again: an inject that found the lock held wrote its entry first.
                _unlock(lock)
                lock = None
                if not journal.open_entries(state_dir, run_id):
                    logger.info("run %s has no open fault: watchdog exits", run_id)
                    return 0
                lock = _try_lock(_lock_path(state_dir, run_id))
                if lock is None:
                    return 0  # a new watchdog took over
                continue
            halted = killswitch.local_status(state_dir) is not None
            now = time.time()
            due = [(p, e) for p, e in opened
                   if dead or halted or (e.get("expires_at") and now >= float(e["expires_at"]) + EXPIRY_GRACE_S)]
            if dead and due:
                logger.warning("run %s is dead (%s): reverting %d open faults", run_id, dead, len(due))
            ok = True
            for path, _entry in due:
                current = journal.read(path)
                if current is None or current.get("status") not in journal.OPEN:
                    continue
                why = f"run dead: {dead}" if dead else "kill switch" if halted else "expiry"
                ok = revert_entry(path, current, by=f"watchdog pid {os.getpid()} ({why})").ok and ok
            if ok:
                failing_since = None
            else:
                failing_since = failing_since or now
                if now - failing_since > GIVE_UP_S:
                    logger.error("run %s: reverts failing for %.0f s; giving up (run `resilience cleanup "
                                 "--run %s`)", run_id, now - failing_since, run_id)
                    return 1
            time.sleep(poll)
    finally:
        if lock is not None:
            _unlock(lock)
