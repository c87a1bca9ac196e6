"""The liveness prober's wiring inside the pod-state exporter program: supervisord, signals, the collector.

The decisions and the timing are :mod:`stack.liveness` (pure, tested with fakes); this module connects them
to the stack's supervisord (the replicas' pids, read every second) and to the kill (``terminate``: SIGTERM,
then SIGKILL after the grace period; supervisord's ``autorestart`` starts the new process). Kept apart from
:mod:`stack.liveness` because the stack's components read the timing from there, and supervisord's client
imports the components.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client.core import REGISTRY

from stack import liveness as lv
from stack import supervisor as sv

logger = logging.getLogger(__name__)

__all__ = ["start_from_args"]


def start_from_args(args: Any, namespace: str, probe: Callable[[str, float], bool],
                    error: Callable[[str], Any],
                    on_restart: Callable[[str, float], None] | None = None) -> Callable[[dict[str, str]], None] | None:
    """Start the liveness prober the parsed ``args`` ask for (``None`` without ``--liveness``): its collector
    registered, its loop in a daemon thread. ``probe(url, timeout)`` is the exporter's HTTP probe (the
    kubelet's rule: 2xx/3xx in time); ``error`` reports a bad option (``ArgumentParser.error``);
    ``on_restart(pod, alive_at)`` hears of every restart supervisord shows (:func:`stack.liveness.run_loop`).

    Returns ``follow(replicas)``: the exporter calls it with the new ``{pod: readiness URL}`` after a scale, so
    a replica added by a scale-out is probed (and restarted) like the others, from its startup probe on."""
    if not args.liveness:
        return None
    if args.supervisor_socket is None:
        error("--liveness needs --supervisor-socket")
    urls: dict[str, str] = {}
    for item in args.liveness:
        pod, sep, url = item.partition("=")
        if not sep or not pod or not url.startswith("http"):
            error(f"--liveness {item!r}: expected POD=http://host:port/path")
        urls[pod] = url
    timing = lv.ProbeTiming(args.liveness_period, args.liveness_timeout, args.liveness_failure_threshold,
                            args.startup_period, args.startup_timeout, args.startup_failure_threshold,
                            args.termination_grace)
    liveness = lv.Liveness(list(urls), timing)
    REGISTRY.register(lv.LivenessCollector(liveness, namespace, args.container))
    client = sv.Supervisor.at(args.supervisor_socket)

    def pids() -> dict[str, int | None]:
        infos = client.process_info()
        return {pod: int(infos[pod]["pid"]) if pod in infos and infos[pod]["statename"] == "RUNNING"
                and infos[pod]["pid"] else None for pod in list(urls)}

    def kill(pod: str, pid: int) -> str:
        if pids().get(pod) != pid:  # pid-safe: never signal a process that is not the one that failed
            return f"not killed: pid {pid} is no longer {pod}'s"
        return lv.terminate(pid, timing.termination_grace_s, sv.killpg, sv.wait_dead)

    thread = threading.Thread(target=lv.run_loop, args=(liveness, urls, pids, probe, kill, threading.Event()),
                              kwargs={"on_restart": on_restart}, name="liveness", daemon=True)
    thread.start()
    logger.info("liveness prober: %s, %s", urls, timing)

    def follow(replicas: dict[str, str]) -> None:
        wanted = {pod: lv.liveness_url(url) for pod, url in replicas.items()}
        for pod in [p for p in urls if p not in wanted]:
            urls.pop(pod, None)
        urls.update(wanted)
        liveness.set_pods(list(wanted))
        logger.info("liveness prober follows the replicas: %s", sorted(wanted))

    return follow
