"""``up``, ``status`` and ``down`` of a local stack.

The stack's state is its data directory: generated configs, data, logs, the
supervisord socket and pid file, ``stack.json`` (profile, ports) and
``secrets.json``. Nothing else is needed to find and stop a stack.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from clients.wait import wait_until
from stack import supervisor as sv
from stack.components.base import Check, Component
from stack.context import StackContext, Tools
from stack.endpoints import DEFAULT_PORT_BASE, SPAN, Endpoints
from stack.errors import ComponentError, StackError
from stack.paths import default_data_dir
from stack.profiles import components_for

logger = logging.getLogger(__name__)

CRASH_LOOP_EXITS = 3  # exits while starting before `up` gives up on a component

Progress = Callable[[str, str, str], None]
"""``progress(component, phase, detail)``: phase is one of starting, probing,
bootstrapping, healthy, failed."""


def _no_progress(component: str, phase: str, detail: str) -> None:
    logger.info("%s: %s %s", component, phase, detail)


@dataclass
class ComponentStatus:
    name: str
    state: str  # supervisor state: RUNNING, STOPPED, BACKOFF, FATAL, ... or ABSENT
    pid: int | None
    endpoint: str
    healthy: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class StackStatus:
    port_base: int
    profile: str
    data_dir: str
    running: bool
    supervisord_pid: int | None
    components: list[ComponentStatus]
    service: str = "python"

    @property
    def healthy(self) -> bool:
        return self.running and bool(self.components) and all(c.healthy for c in self.components)

    def as_dict(self) -> dict[str, object]:
        return {**{k: v for k, v in asdict(self).items() if k != "components"},
                "healthy": self.healthy, "components": [c.as_dict() for c in self.components]}


class LocalStack:
    """One local stack, identified by its data directory (default: derived from the port base)."""

    def __init__(self, port_base: int = DEFAULT_PORT_BASE, data_dir: Path | None = None,
                 profile: str = "minimal", replicas: int = 3, secure: bool = False,
                 service: str | None = None) -> None:
        if not 1024 <= port_base <= 65535 - SPAN:
            raise StackError(f"--port-base {port_base} out of range 1024..{65535 - SPAN}")
        self.data_dir = (data_dir or default_data_dir(port_base)).resolve()
        self.requested_secure = secure
        saved = self._read_state()
        self.requested_service = service
        if saved:  # a stack that exists keeps the ports, profile, security and service it was made with
            port_base, profile = int(saved["port_base"]), str(saved["profile"])
            replicas = int(saved.get("replicas", replicas))
            secure = bool(saved.get("secure", False))
            # ...and its service, unless one is asked for (``up`` refuses to switch a running stack's).
            service = service or str(saved.get("service", "python"))
        self.ctx = StackContext(profile=profile, endpoints=Endpoints(port_base), data_dir=self.data_dir,
                                tools=Tools.discover(), replicas=replicas, secure=secure,
                                service=service or "python")
        self.requested_profile = profile
        self.supervisor = sv.Supervisor(self.ctx)

    # ----------------------------------------------------------------- state
    @property
    def endpoints(self) -> Endpoints:
        return self.ctx.endpoints

    def _state_file(self) -> Path:
        return self.data_dir / "stack.json"

    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._state_file().read_text())
        except (OSError, ValueError):
            return None

    def _write_state(self) -> None:
        state = {"port_base": self.endpoints.port_base, "profile": self.ctx.profile,
                 "replicas": self.ctx.replicas, "secure": self.ctx.secure, "service": self.ctx.service,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        # A scaled stack started again keeps the count to scale back to (stack/scale.py).
        scaled_from = (self._read_state() or {}).get("scaled_from")
        if scaled_from is not None:
            state["scaled_from"] = scaled_from
        self._state_file().write_text(json.dumps(state, indent=2))

    def components(self) -> list[Component]:
        return components_for(self.ctx)

    def is_running(self) -> bool:
        return self.supervisor.is_running()

    # -------------------------------------------------------------------- up
    def up(self, progress: Progress = _no_progress) -> StackStatus:
        """Start the stack and wait until every component is healthy.

        On a running stack, report its status and change nothing. On any
        failure the partial start-up is torn down and :class:`StackError` (or
        :class:`ComponentError`, naming the component and its log) is raised.
        """
        if self.is_running():
            saved = self._read_state() or {}
            if saved.get("profile") not in (None, self.requested_profile):
                raise StackError(f"a {saved['profile']!r} stack is already running in {self.data_dir}; "
                                 f"run `resilience down` before starting a {self.requested_profile!r} one")
            if self.requested_secure and not self.ctx.secure:
                raise StackError(f"a stack without --secure is already running in {self.data_dir}; run "
                                 "`resilience down --purge` before starting a secure one")
            running = str(saved.get("service", "python"))
            if self.requested_service not in (None, running):
                raise StackError(f"a stack running the {running} service is already up in {self.data_dir}; "
                                 f"run `resilience down` before starting one with --service {self.requested_service}")
            return self.status()
        self._check_security()
        if os.geteuid() != 0:
            raise StackError("`resilience up` needs root (PostgreSQL runs as the postgres user and the stack "
                             "chowns its data directory): run it with sudo")
        self.ctx.tools.check()
        if self.ctx.profile == "ha":
            self.ctx.tools.check_ha()
        components = self.components()
        self._check_ports(components)
        started = False
        try:
            self._prepare_dirs()
            for comp in components:
                if comp.prepare:
                    progress(comp.name, "preparing", "")
                    comp.prepare(self.ctx)
            sv.write_config(self.ctx, components)
            self._write_state()
            started = True
            pid = self.supervisor.start_daemon()
            logger.info("supervisord started, pid %s", pid)
            self._wait_all(components, progress)
        except BaseException:
            if started:
                progress("stack", "tearing down", "partial start-up")
                self.down(quiet=True)
            raise
        return self.status()

    def heal(self, progress: Progress = _no_progress, status: StackStatus | None = None) -> list[str]:
        """Bring a running stack back to healthy without restarting what is healthy: start every component
        whose process is not RUNNING, then wait for every unhealthy one as ``up`` does (within its start-up
        allowance: a JVM replica's is 420 s). What a gate does between experiments when one left the stack
        unhealthy. ``status``: the one the caller just read (not read again). Returns a line per component
        it waited for; raises :class:`StackError` (a :class:`ComponentError` naming the component and its log)
        when one does not come back."""
        if not self.is_running():
            raise StackError(f"no stack is running in {self.data_dir}: nothing to heal (`resilience up`)")
        comps = {c.name: c for c in self.components()}
        sick = [c for c in (status or self.status()).components if not c.healthy and c.name in comps]
        done = []
        for c in sick:
            action = "answers again"
            if c.state != "RUNNING":
                action = self.supervisor.ensure_running(c.name, timeout=comps[c.name].startup_timeout)
            done.append(f"{c.name} ({c.detail}): {action}")
        waited = [comps[c.name] for c in sick]
        # Prometheus may have scraped a restarted target while it was down and report it so until its
        # next scrape: the stack is healthy again only when Prometheus sees every target up.
        if waited and "prometheus" in comps and comps["prometheus"] not in waited:
            waited.append(comps["prometheus"])
        self._wait_all(waited, progress)
        return done

    def _check_security(self) -> None:
        """``--secure`` is made once, with the stack's data: an existing plain stack (its Kafka storage formatted
        without SCRAM users) cannot become secure by a restart; and only the minimal profile has it."""
        if not self.requested_secure or self.ctx.secure:
            return
        if self._read_state() is not None:
            raise StackError(f"the stack in {self.data_dir} was made without --secure; `resilience down --purge` "
                             "it first (its Kafka storage has no SCRAM users)")
        if self.ctx.profile != "minimal":
            raise StackError(f"--secure is built for the minimal profile only, not {self.ctx.profile!r}")
        self.ctx.secure = True

    def _prepare_dirs(self) -> None:
        for d in (self.data_dir, self.ctx.conf_dir, self.ctx.log_dir):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)  # the postgres user must traverse to its own directory
        parent = self.data_dir.parent
        while parent != parent.parent and parent.stat().st_mode & 0o005 != 0o005:
            parent.chmod(parent.stat().st_mode | 0o005)
            parent = parent.parent

    def _check_ports(self, components: list[Component]) -> None:
        for comp in components:
            for name in comp.ports:
                port = self.endpoints.port(name)
                holder = _port_holder(port)
                if holder is not None:
                    raise StackError(f"port {port} ({comp.name}: {name}, port base {self.endpoints.port_base}) "
                                     f"is already in use{holder}; choose another --port-base or stop it")

    def _wait_all(self, components: list[Component], progress: Progress) -> None:
        infra = [c for c in components if c.group == "infra" and c.name != "prometheus"]
        later = [c for c in components if c not in infra]
        # Infrastructure first (in parallel), then what depends on it (replicas, exporters) beside
        # Prometheus, whose check waits until it has scraped every target up.
        # The first component to fail is the one reported, and the others stop waiting for it: a crash
        # loop in ClickHouse is not kept waiting for Kafka's start-up timeout, nor hidden behind Kafka's.
        stop = threading.Event()
        for batch in (infra, later):
            with ThreadPoolExecutor(max_workers=max(1, len(batch))) as pool:
                futures = [pool.submit(self._wait_one, c, progress, stop) for c in batch]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                first = next((f.exception() for f in done if f.exception() is not None), None)
                if first is not None:
                    stop.set()
            if first is not None:
                raise first

    def _wait_one(self, comp: Component, progress: Progress, stop: threading.Event | None = None) -> None:
        t0 = time.monotonic()
        deadline = t0 + comp.startup_timeout
        progress(comp.name, "starting", "")
        seen: dict[str, Any] = {"state": "unknown", "previous": "", "crashes": set(), "error": None}
        detail = ""
        for phase, check in (("probing", comp.probe), ("bootstrapping", comp.bootstrap), ("checking", comp.health)):
            if check is None:
                continue
            progress(comp.name, phase, "")

            def passed(check: Check = check) -> tuple[str] | None:
                if stop is not None and stop.is_set():
                    raise StackError(f"{comp.name}: no longer waited for (another component failed first)")
                info = self._info(comp.name)
                state = seen["state"] = str(info["statename"]) if info else "unknown"
                if state == "FATAL":
                    raise self._component_error(comp, f"process FATAL: {(info or {}).get('spawnerr') or ''}")
                # A process that keeps exiting will not get better by waiting for its timeout. Each exit is counted
                # by the start time of the attempt that ended (supervisord's `start`, new at every spawn): one
                # that exits at once spends milliseconds in STARTING, so a sampler waiting for it to leave
                # BACKOFF and come back counted one crash in 60 s on a busy machine (a CI run, 2026-12-03).
                if state in ("BACKOFF", "EXITED"):
                    seen["crashes"].add((info or {}).get("start"))
                    if len(seen["crashes"]) >= CRASH_LOOP_EXITS:
                        raise self._component_error(comp, f"process exited {len(seen['crashes'])} times while "
                                                          "starting")
                seen["previous"] = state
                try:
                    return (check(self.ctx),)
                except Exception as exc:  # the check's own error is the evidence
                    seen["error"] = exc
                    return None

            def why(phase: str = phase) -> str:
                err = seen["error"]
                return (f"not healthy within {comp.startup_timeout:.0f} s (process {seen['state']}; "
                        f"last {phase} error: {type(err).__name__}: {err})")

            (detail,) = wait_until(passed, max(0.0, deadline - time.monotonic()), 0.25, why,
                                   error=lambda message: self._component_error(comp, message))
        progress(comp.name, "healthy", f"{detail} ({time.monotonic() - t0:.1f} s)")

    def _info(self, program: str) -> dict[str, Any] | None:
        try:
            return self.supervisor.process_info().get(program)
        except Exception:
            return None

    def _component_error(self, comp: Component, message: str) -> ComponentError:
        path = sv.log_file(self.ctx, comp)
        return ComponentError(comp.name, message, log_file=path, log_tail=_tail(path, 15))

    # ---------------------------------------------------------------- status
    def status(self) -> StackStatus:
        """Supervisor state and a real health check of every component."""
        saved = self._read_state() or {}
        sup_pid = self.supervisor.pid()
        statuses: list[ComponentStatus] = []
        if sup_pid:
            infos = self.supervisor.process_info()
            components = self.components()

            def one(comp: Component) -> ComponentStatus:
                info = infos.get(comp.name)
                state = str(info["statename"]) if info else "ABSENT"
                pid = int(info["pid"]) if info and info["pid"] else None
                if state != "RUNNING":
                    return ComponentStatus(comp.name, state, pid, comp.endpoint, False, f"process {state}")
                try:
                    return ComponentStatus(comp.name, state, pid, comp.endpoint, True, comp.health(self.ctx))
                except Exception as exc:
                    return ComponentStatus(comp.name, state, pid, comp.endpoint, False,
                                           f"{type(exc).__name__}: {exc}".splitlines()[0][:200])

            with ThreadPoolExecutor(max_workers=len(components)) as pool:
                statuses = list(pool.map(one, components))
        return StackStatus(port_base=self.endpoints.port_base, profile=str(saved.get("profile", self.ctx.profile)),
                           data_dir=str(self.data_dir), running=sup_pid is not None, supervisord_pid=sup_pid,
                           components=statuses, service=str(saved.get("service", self.ctx.service)))

    # ------------------------------------------------------------------ down
    def down(self, purge: bool = False, quiet: bool = False, timeout: float = 60.0) -> list[int]:
        """Stop every process of the stack and return the pids that were stopped.

        Pids are collected (supervisord and all its descendants) before stopping
        and each is verified gone afterwards; stragglers get SIGKILL. ``purge``
        also removes the data directory.
        """
        pid = self.supervisor.pid() or sv.read_pidfile(self.ctx)
        procs: list[psutil.Process] = []
        if pid:
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                procs = []
        procs.extend(self._outside_pids({p.pid for p in procs}))
        if pid and self.supervisor.is_running():
            try:
                self.supervisor.stop_all()
            except Exception as exc:
                logger.warning("stopAllProcesses failed: %s", exc)
            self.supervisor.shutdown()
        if procs:
            _, alive = psutil.wait_procs(procs, timeout=timeout if pid else 0)
            for proc in alive:
                logger.warning("pid %s (%s) still alive after %.0f s: SIGKILL", proc.pid, _name(proc), timeout)
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
            _, alive = psutil.wait_procs(alive, timeout=10)
            if alive:
                raise StackError("could not stop pids " + ", ".join(str(p.pid) for p in alive))
        sock = sv.socket_path(self.ctx)
        sock.unlink(missing_ok=True)
        if purge and self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        return [p.pid for p in procs]


    def _outside_pids(self, known: set[int]) -> list[psutil.Process]:
        """Processes of the stack outside supervisord's tree (see ``Component.pids``)."""
        found: list[psutil.Process] = []
        for comp in self.components():
            if comp.pids is None:
                continue
            try:
                pids = comp.pids(self.ctx)
            except Exception as exc:  # never let a hook stop `down`
                logger.warning("%s: listing its pids failed: %s", comp.name, exc)
                continue
            for pid in pids:
                if pid in known:
                    continue
                with contextlib.suppress(psutil.Error):
                    found.append(psutil.Process(pid))
                    known.add(pid)
        return found


def _port_holder(port: int) -> str | None:
    """``None`` when ``port`` is free on 127.0.0.1, else a description of who holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return None
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return f" ({exc})"
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f" by pid {conn.pid} ({_name(psutil.Process(conn.pid))})"
    except (psutil.Error, OSError):
        pass
    return ""


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "?"


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16384))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"

