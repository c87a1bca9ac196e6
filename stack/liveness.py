"""The kubelet's liveness and startup probes for the replicas of the local stack, and its restarts.

On Kubernetes the kubelet probes each container's ``livenessProbe`` every ``periodSeconds`` with a
``timeoutSeconds`` bound; after ``failureThreshold`` failures in a row it kills the container (SIGTERM,
SIGKILL after ``terminationGracePeriodSeconds``) and starts it again, and kube-state-metrics counts the
restart in ``kube_pod_container_status_restarts_total``. Until the ``startupProbe`` has succeeded once,
liveness is not probed; a startup that fails ``failureThreshold`` times is killed the same way.

supervisord restarts only a process that *exits*: a replica that hangs (alive, not answering) stays hung
for ever. This module gives the local stack what the kubelet does, for the audit-service replicas:

* :class:`ProbeTiming` and :func:`manifest_timing`: the probes' timing, read from the one place it is
  declared, the StatefulSet of ``deploy/k8s/example-service/statefulset.yaml`` (what the kubelet of a
  cluster applies to the same service);
* :class:`Liveness`: the decisions, pure (no clock, no network, no process): which replica to probe
  now, which to restart after what failures, and every restart seen (any new pid of a replica, a crash's
  or a liveness kill's, as kube-state-metrics counts any container restart);
* :func:`terminate`: the kubelet's kill (SIGTERM to the process group, SIGKILL after the grace period;
  supervisord's ``autorestart`` then starts it again, as the kubelet would);
* :class:`LivenessCollector`: the restarts and probe results with the kubelet's and kube-state-metrics'
  names, so the suite reads them the same way on both targets.

It runs inside the pod-state exporter (``stack/pod_state_exporter.py``, ``--liveness``), not as a program of
its own: locally that exporter already *is* the kubelet (it probes every replica's readiness), so one
process holds the replica list, the probe code and the one ``/metrics`` Prometheus already scrapes (no new
port in the port plan, no new scrape job, one Python process less on a two-core machine). Its readiness
loop and this liveness loop are separate threads: a kill waiting out its grace period never delays a
readiness probe.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from stack.errors import ProcessGone, StackError
from stack.paths import REPO_ROOT

logger = logging.getLogger(__name__)

__all__ = ["MANIFEST", "Liveness", "LivenessCollector", "ProbeTiming", "liveness_url", "manifest_timing", "terminate"]

MANIFEST = REPO_ROOT / "deploy" / "k8s" / "example-service" / "statefulset.yaml"
"""The StatefulSet whose probes the local stack applies: the one declaration of their timing."""

RESTART_ALLOWANCE_S = 10.0
"""After the kill: supervisord spawns the new process, the prober sees its pid (it asks every second) and
Prometheus scrapes the counter, on a busy machine. Part of :attr:`ProbeTiming.restart_bound_s`."""

# Kubernetes' defaults for a probe field the manifest leaves out.
_DEFAULTS = {"periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}


@dataclass(frozen=True)
class ProbeTiming:
    """The liveness and startup probes' timing and the termination grace period, in seconds."""

    period_s: float = 10.0
    timeout_s: float = 2.0
    failure_threshold: int = 3
    startup_period_s: float = 2.0
    startup_timeout_s: float = 1.0
    startup_failure_threshold: int = 30
    termination_grace_s: float = 30.0

    @property
    def detection_bound_s(self) -> float:
        """Longest time from a hang to the liveness kill: the first probe that can fail starts at most one
        period after the hang, ``failure_threshold - 1`` periods later the last one starts and fails after
        its timeout."""
        return self.period_s * self.failure_threshold + self.timeout_s

    @property
    def restart_bound_s(self) -> float:
        """Longest time from a hang to the new process: detection, the grace period (a process that does
        not answer does not handle SIGTERM either) and :data:`RESTART_ALLOWANCE_S`."""
        return self.detection_bound_s + self.termination_grace_s + RESTART_ALLOWANCE_S

    def with_startup_allowance(self, seconds: float) -> ProbeTiming:
        """This timing, its startup probe allowed at least ``seconds`` to succeed (a replica whose component
        declares a longer start-up, a JVM on two starved cores, is not killed in a loop while it starts)."""
        threshold = max(self.startup_failure_threshold, math.ceil(seconds / self.startup_period_s))
        return ProbeTiming(self.period_s, self.timeout_s, self.failure_threshold, self.startup_period_s,
                           self.startup_timeout_s, threshold, self.termination_grace_s)

    def as_args(self) -> list[str]:
        """The pod-state exporter's command-line options for this timing."""
        return ["--liveness-period", f"{self.period_s:g}", "--liveness-timeout", f"{self.timeout_s:g}",
                "--liveness-failure-threshold", str(self.failure_threshold),
                "--startup-period", f"{self.startup_period_s:g}", "--startup-timeout", f"{self.startup_timeout_s:g}",
                "--startup-failure-threshold", str(self.startup_failure_threshold),
                "--termination-grace", f"{self.termination_grace_s:g}"]


def manifest_timing(path: Path = MANIFEST, container: int = 0) -> ProbeTiming:
    """The liveness and startup probes of the StatefulSet at ``path`` (its ``container``-th container) and
    its pod's ``terminationGracePeriodSeconds``; a field left out has Kubernetes' default.

    Raises:
        StackError: the file cannot be read, or a field is missing or not a positive number (named).
    """
    try:
        doc = yaml.safe_load(path.read_text())
        spec = doc["spec"]["template"]["spec"]
        box = spec["containers"][container]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise StackError(f"{path}: no spec.template.spec.containers[{container}] ({type(exc).__name__}: {exc})") \
            from None

    def number(probe: str, key: str) -> float:
        where = f"spec.template.spec.containers[{container}].{probe}"
        section = box.get(probe)
        if not isinstance(section, dict):
            raise StackError(f"{path}: {where}: missing")
        value = section.get(key, _DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise StackError(f"{path}: {where}.{key}: {value!r} is not a positive number")
        return float(value)

    grace = spec.get("terminationGracePeriodSeconds", 30)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
        raise StackError(f"{path}: spec.template.spec.terminationGracePeriodSeconds: {grace!r} is not a number >= 0")
    return ProbeTiming(
        period_s=number("livenessProbe", "periodSeconds"), timeout_s=number("livenessProbe", "timeoutSeconds"),
        failure_threshold=int(number("livenessProbe", "failureThreshold")),
        startup_period_s=number("startupProbe", "periodSeconds"),
        startup_timeout_s=number("startupProbe", "timeoutSeconds"),
        startup_failure_threshold=int(number("startupProbe", "failureThreshold")),
        termination_grace_s=float(grace))


# ------------------------------------------------------------------------------------------- decisions
STARTUP, LIVE, KILLING, DOWN = "startup", "live", "killing", "down"


@dataclass
class _Pod:
    pid: int | None = None
    phase: str = DOWN
    failures: int = 0
    next_probe: float = 0.0
    restarts: int = 0
    probes: dict[tuple[str, str], int] = field(default_factory=dict)  # (probe type, result) -> count


class Liveness:
    """The kubelet's probe decisions for a set of pods; every time is passed in (``now``, monotonic seconds).

    Per pod: ``down`` (no running process), ``startup`` (a new process: the startup probe every
    ``startup_period_s`` until it succeeds once), ``live`` (the liveness probe every ``period_s``) and
    ``killing`` (a kill decided; nothing probed until the pod has a new pid). Feed it the pid supervisord
    reports (:meth:`observe_pid`) and each probe's answer (:meth:`observe_probe`); it says which pods are
    due a probe (:meth:`due`) and, from :meth:`observe_probe`, when one must be killed.
    """

    def __init__(self, pods: list[str], timing: ProbeTiming) -> None:
        self.timing = timing
        self.pods = {pod: _Pod() for pod in pods}
        self._lock = threading.Lock()

    def set_pods(self, pods: list[str]) -> None:
        """Follow a scale: a new pod is ``down`` until its first pid (then probed from its startup probe, as a
        new pod's container is), a removed one is forgotten (its restart counter goes, as kube-state-metrics
        drops a deleted pod's series); the others keep their state."""
        with self._lock:
            self.pods = {pod: self.pods.get(pod) or _Pod() for pod in pods}

    def observe_pid(self, pod: str, pid: int | None, now: float) -> bool:
        """Record the pod's current pid (``None``: not running). Returns whether it is a restart: a new
        pid after another one (a crash, a kill, a stop and start) counts, the first pid seen does not."""
        with self._lock:
            p = self.pods.get(pod)
            if p is None:  # removed by a scale meanwhile
                return False
            if pid is None:
                if p.phase != KILLING:
                    p.phase = DOWN
                return False
            if pid == p.pid and p.phase != DOWN:
                return False
            restarted = p.pid is not None and pid != p.pid
            if restarted:
                p.restarts += 1
            if pid != p.pid or p.phase == DOWN:
                p.pid, p.phase, p.failures, p.next_probe = pid, STARTUP, 0, now  # a startup probe at once
            return restarted

    def due(self, now: float) -> list[tuple[str, str, int]]:
        """Pods whose probe is due: ``(pod, probe type "Startup"|"Liveness", pid probed)``; each is scheduled
        for its next period at once, so a probe still in flight is not sent twice."""
        out = []
        with self._lock:
            for pod, p in self.pods.items():
                if p.phase in (STARTUP, LIVE) and p.pid is not None and now >= p.next_probe:
                    startup = p.phase == STARTUP
                    p.next_probe = now + (self.timing.startup_period_s if startup else self.timing.period_s)
                    out.append((pod, "Startup" if startup else "Liveness", p.pid))
        return out

    def timeout(self, probe: str) -> float:
        """The timeout of a probe of type ``probe``."""
        return self.timing.startup_timeout_s if probe == "Startup" else self.timing.timeout_s

    def observe_probe(self, pod: str, probe: str, pid: int, ok: bool) -> bool:
        """Record the answer of a ``probe`` of ``pid``. Returns ``True`` when the pod must be killed now
        (``failure_threshold`` failures in a row of its current probe); it is then ``killing``. An answer
        about an earlier process, or arriving while the pod is not in that probe's phase, is ignored."""
        with self._lock:
            p = self.pods.get(pod)
            phase = STARTUP if probe == "Startup" else LIVE
            if p is None or p.pid != pid or p.phase != phase:
                return False
            key = (probe, "successful" if ok else "failed")
            p.probes[key] = p.probes.get(key, 0) + 1
            if ok:
                p.failures = 0
                if phase == STARTUP:
                    p.phase = LIVE  # the first liveness probe one period later, as the kubelet does
                return False
            p.failures += 1
            threshold = self.timing.startup_failure_threshold if phase == STARTUP else self.timing.failure_threshold
            if p.failures >= threshold:
                p.phase = KILLING
                return True
            return False

    def kill_done(self, pod: str, pid: int) -> None:
        """The kill of ``pid`` is over (it died, or could not be signalled): wait for the new pid."""
        with self._lock:
            p = self.pods.get(pod)
            if p is not None and p.pid == pid and p.phase == KILLING:
                p.phase = DOWN  # the next pid seen (supervisord's restart) is a restart

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per pod: ``restarts``, ``phase``, ``pid``, ``failures`` and probe counts (a copy)."""
        with self._lock:
            return {pod: {"restarts": p.restarts, "phase": p.phase, "pid": p.pid, "failures": p.failures,
                          "probes": dict(p.probes)} for pod, p in self.pods.items()}


# --------------------------------------------------------------------------------------------- actions
def terminate(pid: int, grace_s: float, killpg: Callable[[int, int], None],
              wait_dead: Callable[[int, float], bool]) -> str:
    """The kubelet's kill of a container: SIGTERM to ``pid``'s process group, SIGKILL if it is still alive
    after ``grace_s``. Returns what happened (for the log). ``killpg`` and ``wait_dead`` are
    :func:`stack.supervisor.killpg` and :func:`stack.supervisor.wait_dead` (passed in for the tests)."""
    try:
        killpg(pid, signal.SIGTERM)
    except ProcessGone:
        return f"pid {pid} already gone"
    if wait_dead(pid, grace_s):
        return f"pid {pid} exited on SIGTERM"
    try:
        killpg(pid, signal.SIGKILL)
    except ProcessGone:
        return f"pid {pid} exited at the end of the {grace_s:g} s grace period"
    wait_dead(pid, 10.0)
    return f"pid {pid} SIGKILLed after the {grace_s:g} s grace period"


class LivenessCollector(Collector):
    """The restarts and probe results as kube-state-metrics and the kubelet name them:

    ``kube_pod_container_status_restarts_total{namespace, pod, container}`` and
    ``prober_probe_total{namespace, pod, container, probe_type, result}``.
    """

    def __init__(self, liveness: Liveness, namespace: str, container: str) -> None:
        self.liveness, self.namespace, self.container = liveness, namespace, container

    def collect(self) -> Iterator[CounterMetricFamily]:
        snap = self.liveness.snapshot()
        restarts = CounterMetricFamily("kube_pod_container_status_restarts", "The number of container restarts "
                                       "per container.", labels=["namespace", "pod", "container"])
        probes = CounterMetricFamily("prober_probe", "Cumulative number of a liveness, readiness or startup "
                                     "probe for a container by result.",
                                     labels=["namespace", "pod", "container", "probe_type", "result"])
        for pod, s in snap.items():
            restarts.add_metric([self.namespace, pod, self.container], float(s["restarts"]))
            for (probe, result), n in sorted(s["probes"].items()):
                probes.add_metric([self.namespace, pod, self.container, probe, result], float(n))
        yield restarts
        yield probes


def liveness_url(readiness_url: str) -> str:
    """A replica's liveness URL: the sibling ``/liveness`` of its readiness endpoint (``.../readiness``)."""
    base, sep, _ = readiness_url.rpartition("/readiness")
    if not sep:
        raise StackError(f"readiness endpoint {readiness_url!r} does not end in /readiness; the liveness URL is its "
                         "sibling /liveness")
    return f"{base}/liveness"


def run_loop(liveness: Liveness, urls: dict[str, str], pids: Callable[[], dict[str, int | None]],
             probe: Callable[[str, float], bool], kill: Callable[[str, int], str],
             stop: threading.Event, tick_s: float = 1.0,
             on_restart: Callable[[str, float], None] | None = None) -> None:
    """Drive :class:`Liveness` until ``stop`` is set: every ``tick_s`` read the replicas' pids (``pids()``,
    supervisord's view; an error skips the tick), send the due probes and run the kills, each in a thread of
    its own (a probe waits up to its timeout, a kill up to the grace period: neither holds up the others).
    ``urls`` (pod -> liveness URL) may change while it runs, with :meth:`Liveness.set_pods` (a scale).
    ``on_restart(pod, alive_at)`` hears of each restart, with the last time (monotonic) the old process was
    seen running: the readiness exporter's cue for a restart its probes may have missed."""
    alive_at: dict[str, float] = {}
    while not stop.is_set():
        now = time.monotonic()
        try:
            current = pids()
        except StackError as exc:
            logger.debug("liveness: supervisord: %s", exc)
            current = None
        if current is not None:
            for pod in list(liveness.pods):
                if liveness.observe_pid(pod, current.get(pod), now):
                    logger.info("liveness: %s restarted (pid %s)", pod, current.get(pod))
                    if on_restart is not None:
                        on_restart(pod, alive_at.get(pod, now))
                if current.get(pod) is not None:
                    alive_at[pod] = now
            for pod, kind, pid in liveness.due(now):
                url = urls.get(pod)
                if url is None:  # removed by a scale between the two reads
                    continue
                threading.Thread(target=_probe_once, args=(liveness, url, pod, kind, pid, probe, kill),
                                 name=f"{kind.lower()}-{pod}", daemon=True).start()
        stop.wait(max(0.0, tick_s - (time.monotonic() - now)))


def _probe_once(liveness: Liveness, url: str, pod: str, kind: str, pid: int, probe: Callable[[str, float], bool],
                kill: Callable[[str, int], str]) -> None:
    ok = probe(url, liveness.timeout(kind))
    if not liveness.observe_probe(pod, kind, pid, ok):
        if not ok:
            logger.info("liveness: %s probe of %s (pid %s) failed: %s", kind, pod, pid, url)
        return
    n = liveness.timing.startup_failure_threshold if kind == "Startup" else liveness.timing.failure_threshold
    logger.warning("liveness: %s probe of %s failed %d times in a row: killing pid %s", kind, pod, n, pid)
    try:
        logger.warning("liveness: %s: %s", pod, kill(pod, pid))
    except StackError as exc:
        logger.error("liveness: kill %s pid %s: %s", pod, pid, exc)
    finally:
        liveness.kill_done(pod, pid)


# ------------------------------------------------------------------------------- the exporter's options
def add_arguments(ap: Any) -> None:
    """The pod-state exporter's liveness options (an ``argparse.ArgumentParser``)."""
    t = ProbeTiming()
    ap.add_argument("--liveness", action="append", default=[], metavar="POD=URL",
                    help="probe this replica's liveness URL and restart it as the kubelet would (repeat for each; "
                         "none: no liveness prober)")
    ap.add_argument("--supervisor-socket", type=Path, help="the stack's supervisord socket (with --liveness)")
    ap.add_argument("--container", default="audit-service", help="container label of the restart counter")
    for name, default, kind in (("liveness-period", t.period_s, float), ("liveness-timeout", t.timeout_s, float),
                                ("liveness-failure-threshold", t.failure_threshold, int),
                                ("startup-period", t.startup_period_s, float),
                                ("startup-timeout", t.startup_timeout_s, float),
                                ("startup-failure-threshold", t.startup_failure_threshold, int),
                                ("termination-grace", t.termination_grace_s, float)):
        ap.add_argument(f"--{name}", type=kind, default=default, help=f"(default {default:g}; the stack passes the "
                                                                      f"StatefulSet manifest's)")
