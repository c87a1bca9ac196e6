"""Supervised processes of the local stack, through supervisord's XML-RPC API (with timeouts).

supervisord restarts a process that dies (``autorestart``), like the kubelet
restarts a pod; a process stopped with ``stopProcess`` stays down until
``startProcess``. Every call here is bounded: the RPC socket has a timeout
and every wait has a deadline.
"""

import http.client
import logging
import os
import signal
import socket
import time
import xmlrpc.client
from typing import Any

import psutil
from chaoslib.exceptions import ActivityFailed
from supervisor.xmlrpc import Faults, SupervisorTransport

from faults.local import local_stack
from stack import supervisor as sv
from target.settings import TargetSettings

logger = logging.getLogger(__name__)

RPC_TIMEOUT_S = 10.0
RPC_ERRORS: tuple[type[Exception], ...] = (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError)
DOWN_STATES = ("STOPPED", "EXITED", "FATAL")


class _TimeoutTransport(SupervisorTransport):
    """supervisor's unix-socket transport with a socket timeout (it has none)."""

    def __init__(self, socket_file: str, timeout: float) -> None:
        super().__init__(None, None, f"unix://{socket_file}")
        base: Any = self._get_connection  # type: ignore[has-type]  # set by SupervisorTransport.__init__

        def get_connection() -> Any:
            conn = base()
            connect = conn.connect

            def connect_with_timeout() -> None:
                connect()
                conn.sock.settimeout(timeout)

            conn.connect = connect_with_timeout
            return conn

        self._get_connection = get_connection


class Programs:
    """The supervised programs of one local stack."""

    def __init__(self, settings: TargetSettings) -> None:
        self.stack = local_stack(settings)
        self.socket = sv.socket_path(self.stack.ctx)
        self.where = f"supervisord unix://{self.socket}"

    def _rpc(self) -> Any:
        transport = _TimeoutTransport(str(self.socket), RPC_TIMEOUT_S)
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def call(self, what: str, method: str, *args: Any) -> Any:
        """``supervisor.<method>(*args)``; transport errors become ``ActivityFailed`` naming ``what``."""
        try:
            return getattr(self._rpc(), method)(*args)
        except RPC_ERRORS as exc:  # TimeoutError is an OSError
            raise ActivityFailed(f"{what}: {self.where}: {exc}") from exc

    def supervisord_running(self) -> bool:
        """Whether the stack's supervisord answers (a stopped stack has no faults left to undo)."""
        try:
            self._rpc().getPID()
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError, xmlrpc.client.Fault):
            return False
        return True

    def require_running(self, what: str) -> None:
        """Raise ``ActivityFailed`` unless the stack's supervisord answers."""
        if not self.supervisord_running():
            raise ActivityFailed(f"{what}: the local stack is not running ({self.where} does not answer; "
                                 f"port base {self.stack.endpoints.port_base}, data dir {self.stack.data_dir})")

    def running_info(self, program: str, what: str) -> dict[str, Any]:
        """Info of ``program``, which must be RUNNING on a running stack (``ActivityFailed`` otherwise)."""
        self.require_running(what)
        info = self.info(program)
        if info["statename"] != "RUNNING" or not info["pid"]:
            raise ActivityFailed(f"{what}: {program} is {info['statename']}, not RUNNING ({self.where})")
        return info

    def infos(self) -> dict[str, dict[str, Any]]:
        """Program name -> supervisor's process info."""
        return {i["name"]: i for i in self.call("list programs", "getAllProcessInfo")}

    def info(self, program: str) -> dict[str, Any]:
        """Process info of ``program``; ``ActivityFailed`` listing the known ones if it does not exist."""
        infos = self.infos()
        if program not in infos:
            raise ActivityFailed(f"no supervised program {program!r} in {self.where}; "
                                 f"known: {', '.join(sorted(infos))}")
        return infos[program]

    def group(self, group: str) -> list[dict[str, Any]]:
        """Process infos of every member of supervisor group ``group`` (sorted by name)."""
        infos = self.infos()
        members = sorted((i for i in infos.values() if i["group"] == group), key=lambda i: i["name"])
        if not members:
            groups = sorted({i["group"] for i in infos.values()})
            raise ActivityFailed(f"no supervisor group {group!r} in {self.where}; groups: {', '.join(groups)}")
        return members

    @staticmethod
    def qualified(info: dict[str, Any]) -> str:
        return f"{info['group']}:{info['name']}"

    # -------------------------------------------------------------- actions
    def kill(self, program: str) -> int:
        """SIGKILL ``program``'s process group (supervisord restarts it); returns the killed pid."""
        info = self.info(program)
        if info["statename"] != "RUNNING" or not info["pid"]:
            raise ActivityFailed(f"kill {program}: it is {info['statename']}, not RUNNING ({self.where})")
        pid = int(info["pid"])
        killpg(pid, signal.SIGKILL, f"kill {program}")
        # SIGKILL is delivered asynchronously: on a busy machine a many-threaded process is still
        # "running" for a moment. The fault has happened when this returns.
        if not wait_dead(pid, KILL_WAIT_S):
            raise ActivityFailed(f"kill {program}: pid {pid} still alive {KILL_WAIT_S:.0f} s after SIGKILL "
                                 f"({self.where})")
        logger.info("SIGKILL %s (pid %s) via %s", program, pid, self.where)
        return pid

    def stop(self, program: str, timeout: float | None = None) -> int | None:
        """Stop ``program`` (its stop signal, then SIGKILL after stopwaitsecs); returns the pid it had."""
        info = self.info(program)
        if info["statename"] in DOWN_STATES:
            return None
        try:
            self.call(f"stop {program}", "stopProcess", self.qualified(info), False)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != Faults.NOT_RUNNING:
                raise ActivityFailed(f"stop {program}: {self.where}: {exc.faultString}") from exc
        self.wait_state(program, DOWN_STATES, timeout or 60.0)
        logger.info("stopped %s (pid %s) via %s", program, info["pid"], self.where)
        return int(info["pid"]) if info["pid"] else None

    def ensure_running(self, program: str, timeout: float = 90.0) -> str:
        """Start ``program`` unless it is running or starting, and wait until it is RUNNING.

        Returns what was done ("was RUNNING" or "started"). Raises ``ActivityFailed`` on timeout.
        """
        deadline = time.monotonic() + timeout
        action = "was RUNNING"
        while True:
            info = self.info(program)
            state = info["statename"]
            if state == "RUNNING" and _alive(info.get("pid")):
                return action
            if action == "was RUNNING":
                action = "restarted by supervisord"
            if state in DOWN_STATES:
                try:
                    self.call(f"start {program}", "startProcess", self.qualified(info), False)
                    action = "started"
                    logger.info("started %s (was %s) via %s", program, state, self.where)
                except xmlrpc.client.Fault as exc:
                    if exc.faultCode not in (Faults.ALREADY_STARTED, Faults.SPAWN_ERROR, Faults.ABNORMAL_TERMINATION):
                        raise ActivityFailed(f"start {program}: {self.where}: {exc.faultString}") from exc
            if time.monotonic() > deadline:
                raise ActivityFailed(f"{program} not RUNNING within {timeout:.0f} s (state {state}, "
                                     f"{info.get('spawnerr') or 'no spawn error'}; {self.where})")
            time.sleep(0.2)

    def wait_state(self, program: str, states: tuple[str, ...], timeout: float) -> str:
        """Wait until ``program`` is in one of ``states``; returns it. ``ActivityFailed`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.info(program)["statename"])
            if state in states:
                return state
            if time.monotonic() > deadline:
                raise ActivityFailed(f"{program} still {state} after {timeout:.0f} s, expected "
                                     f"{'/'.join(states)} ({self.where})")
            time.sleep(0.2)


def _alive(pid: Any) -> bool:
    """Whether ``pid`` is a live process (supervisord may still report RUNNING for a just-killed one)."""
    try:
        return bool(pid) and psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_tcp(host: str, port: int, timeout: float, what: str) -> float:
    """Wait until ``host:port`` accepts TCP connections; returns seconds waited."""
    t0 = time.monotonic()
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return time.monotonic() - t0
        except OSError as exc:
            if time.monotonic() - t0 > timeout:
                raise ActivityFailed(f"{what}: {host}:{port} refuses connections after {timeout:.0f} s: {exc}") \
                    from exc
            time.sleep(0.2)


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


KILL_WAIT_S = 10.0


def wait_dead(pid: int, timeout: float) -> bool:
    """``True`` once ``pid`` is gone or a zombie (dead, not yet reaped), ``False`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def killpg(pid: int, sig: int, what: str) -> None:
    """Send ``sig`` to the process group of ``pid`` (supervisord makes each program a group leader),
    like a container runtime signals every process of a container; to ``pid`` alone if it leads none."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        raise ActivityFailed(f"{what}: pid {pid} is gone") from None
    except OSError as exc:
        raise ActivityFailed(f"{what}: signal {signal.Signals(sig).name} to pid {pid}: {exc}") from exc


def stop_for(settings: TargetSettings, program: str, what: str) -> dict[str, Any]:
    """Stop ``program`` and keep it down (the expiry timer or the remove starts it); dry-run aware."""
    programs = Programs(settings)
    info = programs.running_info(program, what)
    if settings.dry_run:
        return {"would": f"stop {program} (pid {info['pid']}) via {programs.where}", "program": program}
    pid = programs.stop(program)
    return {"program": program, "pid": pid, "changed": f"stopped {program} (pid {pid})"}


def start_again(settings: TargetSettings, program: str, what: str, timeout: float = 120.0) -> dict[str, Any]:
    """Make ``program`` RUNNING and its port answer; idempotent; "stack not running" is nothing to undo."""
    programs = Programs(settings)
    if not programs.supervisord_running():
        return {"program": program, "changed": "stack not running: nothing to undo", "would": "nothing"}
    info = programs.info(program)
    if settings.dry_run:
        return {"would": f"start {program} (now {info['statename']}) via {programs.where}", "program": program}
    t0 = time.monotonic()
    done = programs.ensure_running(program, timeout)
    port = ready_port(programs, program)
    if port is not None:
        wait_tcp("127.0.0.1", port, max(5.0, timeout - (time.monotonic() - t0)), f"{what}: {program}")
    return {"program": program, "changed": done, "seconds": round(time.monotonic() - t0, 2)}
