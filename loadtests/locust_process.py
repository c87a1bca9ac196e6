"""Start and stop the SQL-event load from Python: the background activity of an experiment.

The load runs as a ``locust -f loadtests/locustfile.py --headless`` subprocess
in its own session (process group), not in the caller's process:

* Locust monkey-patches the standard library with gevent when imported; doing
  that inside a Chaos Toolkit run (threads, ``requests``, the Kubernetes client)
  would change how everything else in the process behaves.
* A separate process can be SIGKILLed like a real crashed load generator, and
  ``--processes N`` (distributed mode) uses more than one core.
* Locust's CSV files, exit code and summary come for free, exactly as a person
  sees them on the command line.

Every run gets a directory (``run_dir``) holding ``load.json`` (pid, command,
spec), ``locust.log``, ``stats_*.csv`` and, unless disabled, ``ledger/``. A
handle can be rebuilt from ``run_dir`` alone, so :func:`stop_load` works from
another activity, or after the process that started the load died.

Typical use::

    handle = start_load(stack.endpoints.kafka_bootstrap, "spike", rate=200, duration=120, seed=7,
                        ledger_dir="reports/run-1/ledger")
    ...  # inject faults
    result = stop_load(handle)            # or wait_load(handle, timeout=180)
    result.ledger.count, result.stats["requests"], result.exit_code
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from clients.kafka import KafkaAuth
from loadtests.config import AUTH_ENV_PREFIX, LoadConfigError, LoadSpec, check_bootstrap
from loadtests.ledger import Ledger, LedgerError, read_ledger

logger = logging.getLogger(__name__)

__all__ = ["LoadConfigError", "LoadHandle", "LoadResult", "kill_load", "start_load", "stop_load",
           "wait_load"]

Configuration = dict[str, Any]
Secrets = dict[str, Any]

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
HANDLE_FILE = "load.json"
STOP_TIMEOUT_S = 10  # seconds a stopping user may take to finish its current send
STOP_FILE = "STOP"  # the locustfile quits gracefully when this appears in its run directory

# The load generator is a measuring instrument: it stamps ``produced_at`` and then sends, so every
# millisecond it waits for a CPU between the two is counted as the service's end-to-end latency. On a
# machine shared with the stack (and with other people's work), a generator at the default priority
# was measured holding events 300-600 ms (docs/benchmarks.md, "Baseline latency"). It therefore runs
# at a higher priority when the caller may grant one (root, or CAP_SYS_NICE); else at its inherited
# one, and load.json says which. RESILIENCE_LOAD_NICE overrides (0: no change).
LOAD_NICE = -5
NICE_ENV = "RESILIENCE_LOAD_NICE"


@dataclass
class LoadHandle:
    """A running (or finished) load: its process and where it writes."""

    pid: int
    run_dir: str
    ledger_dir: str | None
    command: list[str]
    spec: dict[str, Any]
    started_at: float
    nice: int | None = None  # the generator's niceness as started (None: not read)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (what ``load.json`` holds and what the activity returns)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "process"}

    @classmethod
    def from_run_dir(cls, run_dir: str | os.PathLike[str]) -> LoadHandle:
        """Rebuild a handle from ``<run_dir>/load.json``; raises ``FileNotFoundError``."""
        data = json.loads((Path(run_dir) / HANDLE_FILE).read_text())
        return cls(**data)

    def is_running(self) -> bool:
        """True while the locust process (the master) is alive."""
        if self.process is not None:
            return self.process.poll() is None
        return _alive_locust(self.pid)


@dataclass
class LoadResult:
    """How a load run ended.

    Attributes:
        exit_code: Locust's exit code (0 ok, 1 some produce failed, negative: killed by that signal).
        stats: the aggregated row of ``stats_stats.csv`` (requests, failures, rps, percentiles in ms),
            empty if Locust did not write it (killed).
        ledger: the ledger, ``None`` when disabled or unreadable (``ledger_error`` says why).
    """

    exit_code: int | None
    run_dir: str
    stats: dict[str, float] = field(default_factory=dict)
    ledger: Ledger | None = None
    ledger_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (stats and ledger counts) for an experiment's journal."""
        return {"exit_code": self.exit_code, "run_dir": self.run_dir, "stats": self.stats,
                "ledger": self.ledger.summary() if self.ledger is not None else None,
                "ledger_error": self.ledger_error}


def load_nice(environ: dict[str, str] | os._Environ[str] | None = None) -> int:
    """The niceness adjustment the generator gets: :data:`LOAD_NICE`, or ``$RESILIENCE_LOAD_NICE``."""
    env = os.environ if environ is None else environ
    raw = env.get(NICE_ENV, "").strip()
    if not raw:
        return LOAD_NICE
    try:
        value = int(raw)
    except ValueError:
        raise LoadConfigError(f"{NICE_ENV}={raw!r}: expected an integer from -20 to 19") from None
    if not -20 <= value <= 19:
        raise LoadConfigError(f"{NICE_ENV}={raw!r}: expected an integer from -20 to 19")
    return value


def _renice(adjustment: int) -> None:
    """In the child before exec: raise (or lower) its priority; refused means it keeps the inherited one."""
    if adjustment:
        with contextlib.suppress(OSError):
            os.nice(adjustment)


def _niceness(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_load(bootstrap: str, shape: str = "steady", rate: float = 100.0, duration: float | None = None,
               seed: int = 0, ledger_dir: str | None = None, workers: int = 0, run_dir: str | None = None,
               topic: str = "sql-audit-events", max_events: int | None = None, user_rate: float = 100.0,
               options: dict[str, Any] | None = None, check_timeout: float = 5.0, auth: KafkaAuth | None = None,
               configuration: Configuration | None = None, secrets: Secrets | None = None,
               api_jwt_secret: str | None = None) -> LoadHandle:
    """Start SQL-event load into Kafka in the background and return its handle.

    Arguments:
        bootstrap: Kafka bootstrap servers (the stack's DIRECT listener, ``stack.endpoints.kafka_bootstrap``).
        shape: steady, ramp, spike or soak (:mod:`loadtests.shapes`).
        rate: base rate in events per second (> 0).
        duration: seconds (> 0); default per shape.
        seed: seed of the event content.
        ledger_dir: ledger directory; default ``<run_dir>/ledger``; ``""`` disables the ledger.
        workers: 0 runs one Locust process; N > 0 runs distributed mode with N worker processes.
        run_dir: where logs, CSV and ``load.json`` go; default a new temporary directory.
        topic: the Kafka topic (must exist).
        max_events: stop after this many events in total.
        user_rate: most events/s per Locust user.
        options: further :class:`loadtests.config.LoadSpec` fields (generator and producer knobs).
        check_timeout: seconds allowed to reach Kafka and find the topic before starting.
        auth: the Kafka login (SASL/TLS); it reaches Locust in its environment, never its command line.
        api_jwt_secret: the HS256 key of the read API's tokens when ``options`` has ``api_urls`` (handed to
            Locust in its environment, never on its command line).

    Raises :class:`LoadConfigError` naming the argument or the address — an unknown
    shape, a rate or duration <= 0, unreachable brokers, a missing topic — before any
    load starts, and ``RuntimeError`` if Locust exits within its first second.
    """
    if not isinstance(workers, int) or workers < 0:
        raise LoadConfigError(f"workers: must be an integer >= 0, got {workers!r}")
    run_path = Path(run_dir).resolve() if run_dir else Path(tempfile.mkdtemp(prefix="loadtests-"))
    if ledger_dir is None:
        ledger_dir = str(run_path / "ledger")
    if ledger_dir:
        ledger_dir = str(Path(ledger_dir).resolve())  # locust runs in run_dir
    spec = LoadSpec(bootstrap=bootstrap, shape=shape, rate=rate, duration=duration, seed=seed,
                    ledger_dir=ledger_dir or None, topic=topic, max_events=max_events, user_rate=user_rate,
                    **(options or {}))
    if spec.api_url_list and not api_jwt_secret:
        raise LoadConfigError("api_urls: the read API's token key (api_jwt_secret) is required with them")
    login = auth or KafkaAuth()
    adjustment = load_nice()
    check_bootstrap(spec.bootstrap, spec.topic, timeout=check_timeout, auth=login)
    run_path.mkdir(parents=True, exist_ok=True)
    (run_path / STOP_FILE).unlink(missing_ok=True)  # a reused run directory may hold the last run's stop request
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
               "--csv", str(run_path / "stats"), "--json-file", str(run_path / "stats"),
               "--loglevel", "INFO", *spec.locust_args(),
               # A stop lets a user finish the send it is in (its callbacks attached), instead of killing
               # it between the record entering the producer and the callback that writes the ledger.
               "--stop-timeout", str(STOP_TIMEOUT_S)]
    if workers:
        # Master and forked workers talk on a free loopback port, not Locust's fixed 5557: two load
        # generators on one machine (two stacks, a test beside a run) must not collide.
        port = str(_free_port())
        command += ["--processes", str(workers), "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
                    "--master-host", "127.0.0.1", "--master-port", port]
    log = (run_path / "locust.log").open("ab")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(f"{AUTH_ENV_PREFIX}KAFKA_")}
        env.update(login.environment(AUTH_ENV_PREFIX))
        if spec.api_url_list and api_jwt_secret:
            env["LOADTESTS_API_JWT_SECRET"] = api_jwt_secret
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=str(run_path), env=env,
                                   preexec_fn=lambda: _renice(adjustment))
    finally:
        log.close()
    handle = LoadHandle(pid=process.pid, run_dir=str(run_path), ledger_dir=spec.ledger_dir, command=command,
                        spec={k: v for k, v in asdict(spec).items() if k != "extra"},
                        started_at=time.time(), nice=_niceness(process.pid), process=process)
    (run_path / HANDLE_FILE).write_text(json.dumps(handle.as_dict(), indent=2) + "\n")
    logger.info("load started: pid %d (nice %s), %s %.1f events/s for %.0f s into %s/%s, run dir %s", process.pid,
                handle.nice, spec.shape, spec.rate, spec.effective_duration, spec.bootstrap, spec.topic, run_path)
    if adjustment < 0 and handle.nice is not None and handle.nice >= os.nice(0):
        logger.warning("load generator: its priority could not be raised (%s=%d needs root or CAP_SYS_NICE); on a "
                       "busy machine its own waits count as the service's latency", NICE_ENV, adjustment)
    try:
        process.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return handle
    tail = _tail(run_path / "locust.log")
    raise RuntimeError(f"locust exited at once with code {process.returncode}; {run_path}/locust.log:\n{tail}")


def wait_load(handle: LoadHandle | str, timeout: float) -> LoadResult:
    """Wait up to ``timeout`` seconds for the load to finish by itself; then return its result.

    Raises ``TimeoutError`` if it is still running (the load keeps running; call :func:`stop_load`).
    """
    h = _handle(handle)
    deadline = time.monotonic() + timeout
    while h.is_running():
        if time.monotonic() > deadline:
            raise TimeoutError(f"load pid {h.pid} still running after {timeout:.0f} s ({h.run_dir})")
        time.sleep(0.2)
    return _result(h)


def stop_load(handle: LoadHandle | str, timeout: float = 30.0, configuration: Configuration | None = None,
              secrets: Secrets | None = None) -> LoadResult:
    """Stop the load gracefully (SIGINT: users stop, in-flight events are flushed, ledgers closed); return
    its result.

    ``handle`` is a :class:`LoadHandle` or a run directory. After ``timeout``
    seconds the whole process group gets SIGKILL. Idempotent: stopping a load
    that already ended just returns its result.
    """
    h = _handle(handle)
    if h.is_running():
        logger.info("stopping load pid %d (%s)", h.pid, h.run_dir)
        # First a STOP file, which the locustfile turns into runner.quit(): users stop, producers
        # flush, ledgers close. A signal would land as an exception inside whatever greenlet runs.
        (Path(h.run_dir) / STOP_FILE).touch()
        deadline = time.monotonic() + timeout
        while h.is_running() and time.monotonic() < deadline - timeout / 3:
            time.sleep(0.1)
        if h.is_running():
            # SIGINT, not SIGTERM: during a shape test headless Locust has not installed its SIGTERM
            # handler yet (it dies at once, nothing flushed) but turns SIGINT into a graceful stop.
            logger.warning("load pid %d still running after the STOP file: SIGINT", h.pid)
            _signal(h.pid, signal.SIGINT)
        while h.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if h.is_running():
            logger.warning("load pid %d did not stop within %.0f s: SIGKILL to its process group", h.pid, timeout)
            _kill_group(h.pid)
            _reap(h, 10.0)
    _reap_group(h.pid, 10.0)
    return _result(h)


def kill_load(handle: LoadHandle | str, configuration: Configuration | None = None,
              secrets: Secrets | None = None) -> LoadResult:
    """SIGKILL the load generator and all its workers at once (a crashed load generator); return the result.

    Nothing is flushed: the ledger keeps what was written before the kill.
    """
    h = _handle(handle)
    logger.info("killing load pid %d and its process group (%s)", h.pid, h.run_dir)
    _kill_group(h.pid)
    _reap(h, 10.0)
    _reap_group(h.pid, 10.0)
    return _result(h)


# ------------------------------------------------------------------ helpers
def _handle(handle: LoadHandle | str | os.PathLike[str]) -> LoadHandle:
    if isinstance(handle, LoadHandle):
        return handle
    return LoadHandle.from_run_dir(handle)


def _alive_locust(pid: int) -> bool:
    """True if ``pid`` is alive and is a locust process (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"locust" in cmdline


def _signal(pid: int, sig: int) -> None:
    if not _alive_locust(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _kill_group(pid: int) -> None:
    """SIGKILL every process of the group led by ``pid`` (start_new_session made pid the group id),
    if it still holds a locust process (a recycled pid is left alone)."""
    if not any(_alive_locust(member) for member in _group_members(pid)):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(h: LoadHandle, timeout: float) -> None:
    if h.process is not None:
        try:
            h.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("load pid %d not reaped within %.0f s", h.pid, timeout)


def _reap_group(pgid: int, timeout: float) -> None:
    """Wait until no process of group ``pgid`` is left (forked workers exit after their master)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_members(pgid):
            return
        time.sleep(0.1)
    left = _group_members(pgid)
    if left:
        logger.warning("load group %d: pids %s still alive after %.0f s: SIGKILL", pgid, left, timeout)
        _kill_group(pgid)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields_ = stat.rsplit(")", 1)[-1].split()
        if len(fields_) > 2 and fields_[0] != "Z" and int(fields_[2]) == pgid:
            members.append(int(entry.name))
    return members


def _result(h: LoadHandle) -> LoadResult:
    code: int | None = h.process.poll() if h.process is not None else None
    run = Path(h.run_dir)
    stats = _final_stats(run / "stats.json") or _stats(run / "stats_stats.csv")
    result = LoadResult(exit_code=code, run_dir=h.run_dir, stats=stats)
    if h.ledger_dir:
        try:
            result.ledger = read_ledger(h.ledger_dir)
        except LedgerError as exc:
            result.ledger_error = str(exc)
    return result


def _final_stats(path: Path) -> dict[str, float]:
    """Totals of Locust's ``--json-file`` (written once at shutdown, so complete; empty if absent)."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not entries:
        return {}
    requests = sum(int(e["num_requests"]) for e in entries)
    failures = sum(int(e["num_failures"]) for e in entries)
    start = min(float(e["start_time"]) for e in entries)
    last = max(float(e["last_request_timestamp"] or start) for e in entries)
    hist: dict[float, int] = {}
    for e in entries:
        for ms, count in e["response_times"].items():
            hist[float(ms)] = hist.get(float(ms), 0) + int(count)
    out = {"requests": float(requests), "failures": float(failures),
           "rps": requests / (last - start) if last > start else 0.0,
           "avg_ms": sum(float(e["total_response_time"]) for e in entries) / requests if requests else 0.0,
           "max_ms": max(float(e["max_response_time"] or 0) for e in entries)}
    for q in (50, 95, 99):
        out[f"p{q}_ms"] = _percentile(hist, q / 100)
    return out


def _percentile(hist: dict[float, int], q: float) -> float:
    total = sum(hist.values())
    if not total:
        return 0.0
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= q * total:
            return value
    return max(hist)


def _stats(path: Path) -> dict[str, float]:
    """The ``Aggregated`` row of Locust's ``stats_stats.csv`` as numbers (empty if absent)."""
    try:
        with path.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("Name") == "Aggregated"]
    except OSError:
        return {}
    if not rows:
        return {}
    names = {"Request Count": "requests", "Failure Count": "failures", "Requests/s": "rps",
             "Failures/s": "failures_per_s", "Average Response Time": "avg_ms", "50%": "p50_ms",
             "95%": "p95_ms", "99%": "p99_ms", "Max Response Time": "max_ms"}
    out = {}
    for column, key in names.items():
        try:
            out[key] = float(rows[0][column])
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
