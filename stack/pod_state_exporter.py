"""Pod readiness as kube-state-metrics exports it, for the replicas of the local stack.

On Kubernetes the kubelet probes each pod's readiness endpoint and kube-state-metrics exports the
result; the suite reads readiness from that (the ``kubernetes`` metric profile of docs/slo.yaml),
never from a metric of the service itself. The local stack has no kubelet: this exporter plays
both parts. Every ``--period`` seconds it GETs each replica's readiness URL (any service: the
Python reference and Spring Boot both answer ``/actuator/health/readiness``) and serves, with
kube-state-metrics' names and labels:

    kube_pod_status_ready{namespace, pod, condition="true"|"false"|"unknown"}   1 for the current one
    kube_statefulset_status_replicas_ready{namespace, statefulset}
    kube_statefulset_replicas{namespace, statefulset}

A replica is ready when its endpoint answers 2xx/3xx within ``--timeout`` (the kubelet's rule);
after ``--failure-threshold`` failed probes in a row it is not ready (kubelet default 3; ours 1, so
a short unreadiness is seen rather than smoothed away), and one success makes it ready again.

Two rules keep a short outage from slipping between the samples (a SIGKILLed Python replica is back and
ready in 0.6 s on a quiet machine, faster than two 0.5 s probes; Prometheus missed 6 of 12 such kills):

* A refused or reset connection (no process listens) makes the replica not ready at once, as the kubelet
  marks a pod not ready as soon as its container exits, without waiting for probes; the threshold is for
  slow or negative answers, which a busy machine gives now and then.
* Every unready spell is exported for at least ``--min-unready`` seconds (the stack passes two scrape
  intervals), so a scrape sees it however quickly the replica came back.

With ``--liveness`` the exporter also learns of restarts from supervisord's pids: a replica restarted
between two readiness probes (a new pid, no unready spell since the old pid was last seen) is marked not
ready when the restart is seen, up to a second or two late, rather than not at all.

The replicas can change while it runs (a scale-out, :mod:`stack.scale`): with ``--replicas-file``
it re-reads that JSON object (``{"audit-service-0": "http://...", ...}``) whenever the file changes,
and its set replaces the ``--replica`` ones: a new replica is ``unknown`` until probed, a removed one's
series go away (kube-state-metrics drops a deleted pod's), and ``kube_statefulset_replicas`` counts
the current set. A file that is missing or unreadable leaves the set as it was.

    python -m stack.pod_state_exporter --port 19013 --replica audit-service-0=http://127.0.0.1:19020/... ...

With ``--liveness POD=URL`` (one per replica) and ``--supervisor-socket`` it also plays the kubelet's
liveness and startup probes and restarts a replica that fails them (``stack/liveness.py``, which says why it
lives here), exporting ``kube_pod_container_status_restarts_total``.
"""

from __future__ import annotations

import argparse
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from stack import liveness, liveness_prober
from stack.replicas_file import read_replicas_file

logger = logging.getLogger(__name__)


class Answer(enum.Enum):
    """What one readiness probe got."""

    READY = "ready"  # 2xx or 3xx within the timeout
    FAILED = "failed"  # another status, or no answer within the timeout: counted against the failure threshold
    GONE = "gone"  # refused or reset: no process listens; not ready at once


class ReadinessCollector(Collector):
    """The latest readiness of each replica, as kube-state-metrics series."""

    def __init__(self, namespace: str, statefulset: str, pods: list[str], failure_threshold: int,
                 min_unready_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.namespace, self.statefulset, self.pods = namespace, statefulset, pods
        self.failure_threshold, self.min_unready_s, self.clock = failure_threshold, min_unready_s, clock
        self.ready: dict[str, bool | None] = dict.fromkeys(pods)  # None: not probed yet ("unknown")
        self.failures: dict[str, int] = dict.fromkeys(pods, 0)
        self.unready_at: dict[str, float] = {}  # when the current or last unready spell began
        self._lock = threading.Lock()

    def observe(self, pod: str, answer: Answer | bool) -> None:
        """Record one probe's answer (``True``/``False``: ``READY``/``FAILED``)."""
        if isinstance(answer, bool):
            answer = Answer.READY if answer else Answer.FAILED
        with self._lock:
            if pod not in self.ready:  # removed by a scale while its probe was in flight
                return
            now = self.clock()
            if answer is Answer.READY:
                self.failures[pod] = 0
                if self.ready[pod] is False and now < self.unready_at[pod] + self.min_unready_s:
                    return  # the spell has not been exported for long enough to be scraped
                self.ready[pod] = True
                return
            self.failures[pod] += 1
            if answer is Answer.GONE or self.failures[pod] >= self.failure_threshold or self.ready[pod] is None:
                self._unready(pod, now)

    def restarted(self, pod: str, alive_at: float) -> None:
        """supervisord shows a new process for ``pod``; the old one was last seen running at ``alive_at``
        (this collector's clock). Unless a spell began since then (the probes saw the restart), begin one."""
        with self._lock:
            if pod in self.ready and self.unready_at.get(pod, float("-inf")) < alive_at:
                self.failures[pod] = 0
                self._unready(pod, self.clock())

    def _unready(self, pod: str, now: float) -> None:
        if self.ready[pod] is not False:
            self.unready_at[pod] = now
        self.ready[pod] = False

    def set_pods(self, pods: list[str]) -> None:
        """Follow a scale: new pods start ``unknown``, removed ones are forgotten (their series go)."""
        with self._lock:
            self.pods = list(pods)
            self.ready = {pod: self.ready.get(pod) for pod in pods}
            self.failures = {pod: self.failures.get(pod, 0) for pod in pods}
            self.unready_at = {pod: t for pod, t in self.unready_at.items() if pod in pods}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            ready = dict(self.ready)
            pods = list(self.pods)
        status = GaugeMetricFamily("kube_pod_status_ready", "Describes whether the pod is ready to serve requests.",
                                   labels=["namespace", "pod", "condition"])
        for pod, state in ready.items():
            current = "unknown" if state is None else ("true" if state else "false")
            for condition in ("true", "false", "unknown"):
                status.add_metric([self.namespace, pod, condition], 1.0 if condition == current else 0.0)
        yield status
        sts = ["namespace", "statefulset"]
        count = GaugeMetricFamily("kube_statefulset_status_replicas_ready", "The number of ready replicas per "
                                  "StatefulSet.", labels=sts)
        count.add_metric([self.namespace, self.statefulset], float(sum(1 for s in ready.values() if s)))
        yield count
        desired = GaugeMetricFamily("kube_statefulset_replicas", "Number of desired pods for a StatefulSet.",
                                    labels=sts)
        desired.add_metric([self.namespace, self.statefulset], float(len(pods)))
        yield desired


def answer(url: str, timeout: float) -> Answer:
    """The kubelet's HTTP probe: success is a 2xx or 3xx answer within ``timeout``; a refused or reset
    connection is told apart (nothing listens there)."""
    try:
        ok = 200 <= requests.get(url, timeout=timeout, allow_redirects=False).status_code < 400
    except requests.Timeout:
        return Answer.FAILED
    except requests.ConnectionError:
        return Answer.GONE
    except requests.RequestException:
        return Answer.FAILED
    return Answer.READY if ok else Answer.FAILED


def probe(url: str, timeout: float) -> bool:
    """The kubelet's HTTP probe as a yes or no (the liveness and startup probes)."""
    return answer(url, timeout) is Answer.READY


def run(collector: ReadinessCollector, replicas: dict[str, str], port: int, period: float, timeout: float,
        replicas_file: Path | None = None, follow: Callable[[dict[str, str]], None] | None = None) -> None:
    """Probe readiness every ``period`` s for ever; a change of ``replicas_file`` (a scale) replaces the replicas,
    here and, through ``follow``, in the liveness prober."""
    REGISTRY.register(collector)
    start_http_server(port, addr="127.0.0.1")
    logger.info("pod state exporter on 127.0.0.1:%s: %s", port, replicas)
    seen_mtime: float | None = None
    with ThreadPoolExecutor(max_workers=10) as pool:
        while True:
            t0 = time.monotonic()
            if replicas_file is not None:
                try:
                    mtime: float | None = replicas_file.stat().st_mtime
                except OSError:
                    mtime = None
                if mtime is not None and mtime != seen_mtime:
                    current = read_replicas_file(replicas_file)
                    if current is not None and current != replicas:
                        logger.info("replicas now %s (from %s)", sorted(current), replicas_file)
                        replicas = current
                        collector.set_pods(list(replicas))
                        if follow is not None:
                            follow(dict(replicas))
                    seen_mtime = mtime
            answers = pool.map(lambda item: (item[0], answer(item[1], timeout)), list(replicas.items()))
            for pod, got in answers:
                collector.observe(pod, got)
            time.sleep(max(0.0, period - (time.monotonic() - t0)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m stack.pod_state_exporter", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True, help="port of /metrics on 127.0.0.1")
    ap.add_argument("--namespace", default="local", help="namespace label (default local)")
    ap.add_argument("--statefulset", default="audit-service", help="statefulset label (default audit-service)")
    ap.add_argument("--replica", action="append", required=True, metavar="POD=URL",
                    help="a replica and its readiness URL (repeat for each)")
    ap.add_argument("--period", type=float, default=0.5, help="seconds between probes (default 0.5)")
    ap.add_argument("--timeout", type=float, default=0.4, help="probe timeout in seconds (default 0.4)")
    ap.add_argument("--failure-threshold", type=int, default=1, help="failed probes before unready (default 1)")
    ap.add_argument("--min-unready", type=float, default=0.0, metavar="SECONDS",
                    help="export every unready spell for at least this long (default 0; the stack passes two "
                         "scrape intervals)")
    ap.add_argument("--replicas-file", type=Path, default=None, metavar="PATH",
                    help="JSON {pod: url} re-read when it changes; replaces the --replica set (a scale)")
    liveness.add_arguments(ap)
    args = ap.parse_args(argv)
    replicas = {}
    for item in args.replica:
        pod, sep, url = item.partition("=")
        if not sep or not pod or not url.startswith("http"):
            ap.error(f"--replica {item!r}: expected POD=http://host:port/path")
        replicas[pod] = url
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    collector = ReadinessCollector(args.namespace, args.statefulset, list(replicas), args.failure_threshold,
                                   args.min_unready)
    follow = liveness_prober.start_from_args(args, args.namespace, probe, ap.error, collector.restarted)
    run(collector, replicas, args.port, args.period, args.timeout, args.replicas_file, follow)


if __name__ == "__main__":
    main()
