"""The local stack's supervised programs, as the fault backends need them (errors as ``ActivityFailed``).

supervisord restarts a process that dies (``autorestart``), like the kubelet restarts a pod;
a process stopped with ``stopProcess`` stays down until ``startProcess``. The client is the
stack's (:class:`stack.supervisor.Supervisor`: socket timeouts, bounded waits); this module maps
its errors to ``ActivityFailed`` naming what the fault was doing, and adds what only faults need:
"the stack must be running", "stop it and keep it down", "start it and wait until its port answers".
"""

import contextlib
import logging
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import psutil
from chaoslib.exceptions import ActivityFailed

from clients.wait import wait_until
from faults.local import local_stack
from stack import supervisor as sv
from stack.errors import StackError
from target.settings import TargetSettings

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def failing_as_activity(what: str) -> Iterator[None]:
    """Turn a :class:`stack.errors.StackError` raised inside the block into ``ActivityFailed`` naming ``what``."""
    try:
        yield
    except StackError as exc:
        raise ActivityFailed(f"{what}: {exc}") from exc


class Programs:
    """The supervised programs of one local stack."""

    def __init__(self, settings: TargetSettings) -> None:
        self.stack = local_stack(settings)
        self.supervisor = self.stack.supervisor
        self.where = self.supervisor.where

    def supervisord_running(self) -> bool:
        """Whether the stack's supervisord answers (a stopped stack has no faults left to undo)."""
        return self.supervisor.is_running()

    def require_running(self, what: str) -> None:
        """Raise ``ActivityFailed`` unless the stack's supervisord answers."""
        if not self.supervisord_running():
            raise ActivityFailed(f"{what}: the local stack is not running ({self.where} does not answer; "
                                 f"port base {self.stack.endpoints.port_base}, data dir {self.stack.data_dir})")

    def running_info(self, program: str, what: str) -> dict[str, Any]:
        """Info of ``program``, which must be RUNNING on a running stack (``ActivityFailed`` otherwise)."""
        self.require_running(what)
        info = self.info(program, what)
        if info["statename"] != "RUNNING" or not info["pid"]:
            raise ActivityFailed(f"{what}: {program} is {info['statename']}, not RUNNING ({self.where})")
        return info

    def infos(self, what: str) -> dict[str, dict[str, Any]]:
        """Program name -> supervisor's process info."""
        with failing_as_activity(what):
            return self.supervisor.process_info()

    def info(self, program: str, what: str) -> dict[str, Any]:
        """Process info of ``program``; ``ActivityFailed`` listing the known ones if it does not exist."""
        with failing_as_activity(what):
            return self.supervisor.info(program)

    def group(self, group: str, what: str) -> list[dict[str, Any]]:
        """Process infos of every member of supervisor group ``group`` (sorted by name)."""
        with failing_as_activity(what):
            return self.supervisor.group(group)

    def candidates(self, group: str, replica: str | None, what: str) -> tuple[list[dict[str, Any]],
                                                                              list[dict[str, Any]]]:
        """(every member of ``group``, those RUNNING with a pid: only ``replica`` when it is named).

        ``ActivityFailed`` when none is left, naming the members when ``replica`` is not one of them."""
        members = self.group(group, what)
        running = [m for m in members if m["statename"] == "RUNNING" and m["pid"]]
        if replica is not None:
            running = [m for m in running if m["name"] == replica]
            if not running:
                raise ActivityFailed(f"{what}: {replica!r} is not a RUNNING member of {group} "
                                     f"({', '.join(m['name'] for m in members)})")
        if not running:
            raise ActivityFailed(f"{what}: no RUNNING replica in {group}")
        return members, running

    def kill(self, program: str, what: str | None = None) -> int:
        """SIGKILL ``program``'s process group (supervisord restarts it) once it is dead; returns the pid."""
        with failing_as_activity(what or f"kill {program}"):
            return self.supervisor.kill(program)

    def stop(self, program: str, timeout: float = 60.0, what: str | None = None) -> int | None:
        """Stop ``program`` (its stop signal, then SIGKILL after stopwaitsecs); returns the pid it had."""
        with failing_as_activity(what or f"stop {program}"):
            return self.supervisor.stop(program, timeout)

    def request_stop(self, program: str, what: str) -> dict[str, Any]:
        """Ask supervisord to stop ``program`` without waiting; returns its info from before."""
        with failing_as_activity(what):
            return self.supervisor.request_stop(program)

    def ensure_running(self, program: str, timeout: float = 90.0, what: str | None = None) -> str:
        """Start ``program`` unless it runs, and wait until it is RUNNING; "was RUNNING", "restarted by
        supervisord" or "started"."""
        with failing_as_activity(what or f"start {program}"):
            return self.supervisor.ensure_running(program, timeout)

    def wait_state(self, program: str, states: tuple[str, ...], timeout: float, what: str) -> str:
        """Wait until ``program`` is in one of ``states``; returns it."""
        with failing_as_activity(what):
            return self.supervisor.wait_state(program, states, timeout)


def killpg(pid: int, sig: int, what: str) -> None:
    """:func:`stack.supervisor.killpg` (the process group of ``pid``); ``ActivityFailed`` naming ``what``."""
    with failing_as_activity(what):
        sv.killpg(pid, sig)


def freeze(pid: int, what: str, timeout: float = 5.0) -> float:
    """SIGSTOP the process group of ``pid`` and wait until ``pid`` reads stopped; seconds waited.

    ``kill`` returns before the kernel has stopped every thread of a busy multi-threaded process (a JVM,
    ClickHouse): a fault that returned then could be judged "applied" while its target still runs.
    ``ActivityFailed`` ("did not bite") if it is not stopped within ``timeout``."""
    killpg(pid, signal.SIGSTOP, what)
    t0 = time.monotonic()

    def stopped() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_STOPPED
        except psutil.Error as exc:
            raise ActivityFailed(f"{what}: pid {pid} after SIGSTOP: {exc}") from exc

    wait_until(stopped, timeout, 0.05, f"{what}: SIGSTOP sent to pid {pid} but it is not stopped after "
               f"{timeout:g} s (the fault did not bite)", error=ActivityFailed)
    return time.monotonic() - t0


def wait_tcp(host: str, port: int, timeout: float, what: str) -> float:
    """Wait until ``host:port`` accepts TCP connections; returns seconds waited."""
    t0 = time.monotonic()

    def accepts() -> bool:
        with socket.create_connection((host, port), timeout=1.0):
            return True

    wait_until(accepts, timeout, 0.2, f"{what}: {host}:{port} refuses connections after {timeout:.0f} s",
               retry_on=(OSError,), error=ActivityFailed)
    return time.monotonic() - t0


# Port that says "ready" for each infrastructure program (audit-service-<i> uses its replica port).
READY_PORTS = {"kafka": "kafka", "postgres": "postgres", "clickhouse": "clickhouse_tcp",
               "toxiproxy": "toxiproxy_api", "prometheus": "prometheus",
               # ha profile (stack/profiles.py); a Patroni member is ready when its REST API answers
               "kafka-2": "kafka_2", "kafka-3": "kafka_3", "clickhouse-2": "clickhouse_tcp_2",
               "postgres-2": "patroni_api_2", "etcd": "etcd_client", "zookeeper": "zookeeper"}


def ready_port(programs: Programs, program: str) -> int | None:
    """TCP port that accepts connections once ``program`` is ready, if known."""
    eps = programs.stack.endpoints
    if program in READY_PORTS:
        return eps.port(READY_PORTS[program])
    prefix = "audit-service-"
    if program.startswith(prefix) and program[len(prefix):].isdigit():
        return eps.replica_port(int(program[len(prefix):]))
    return None


def stop_for(settings: TargetSettings, program: str, what: str) -> dict[str, Any]:
    """Stop ``program`` and keep it down (the expiry timer or the remove starts it); dry-run aware."""
    programs = Programs(settings)
    info = programs.running_info(program, what)
    if settings.dry_run:
        return {"would": f"stop {program} (pid {info['pid']}) via {programs.where}", "program": program}
    pid = programs.stop(program, what=what)
    return {"program": program, "pid": pid, "changed": f"stopped {program} (pid {pid})"}


def start_again(settings: TargetSettings, program: str, what: str, timeout: float = 120.0) -> dict[str, Any]:
    """Make ``program`` RUNNING and its port answer; idempotent; "stack not running" is nothing to undo."""
    programs = Programs(settings)
    if not programs.supervisord_running():
        return {"program": program, "changed": "stack not running: nothing to undo", "would": "nothing"}
    info = programs.info(program, what)
    if settings.dry_run:
        return {"would": f"start {program} (now {info['statename']}) via {programs.where}", "program": program}
    t0 = time.monotonic()
    done = programs.ensure_running(program, timeout, what)
    port = ready_port(programs, program)
    if port is not None:
        wait_tcp("127.0.0.1", port, max(5.0, timeout - (time.monotonic() - t0)), f"{what}: {program}")
    return {"program": program, "changed": done, "seconds": round(time.monotonic() - t0, 2)}

