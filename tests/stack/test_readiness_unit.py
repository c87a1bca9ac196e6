"""The pod-state exporter's readiness rules (stack/pod_state_exporter.py) with a fake clock, and its HTTP probe
against real sockets. No stack needed; tests/stack/test_readiness_live.py kills real replicas.

A SIGKILLed Python replica is back and ready in about 0.6 s on a quiet machine: before these rules the exporter
needed two failed probes 0.5 s apart and Prometheus missed 6 of 12 such kills (2026-12-03), so a pod_failure run
could end "fault did not take effect" on a kill that happened.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.registry import CollectorRegistry

from stack import liveness as lv
from stack.pod_state_exporter import Answer, ReadinessCollector, answer

POD = "audit-service-0"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def collector(clock: Clock, threshold: int = 2, hold: float = 1.0) -> tuple[ReadinessCollector, CollectorRegistry]:
    c = ReadinessCollector("local", "audit-service", [POD], threshold, hold, clock)
    registry = CollectorRegistry()
    registry.register(c)
    return c, registry


def exported_ready(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("kube_pod_status_ready", {"namespace": "local", "pod": POD, "condition": "true"})


def test_a_refused_connection_is_unready_at_once_a_failed_answer_waits_for_the_threshold() -> None:
    clock = Clock()
    c, registry = collector(clock)
    c.observe(POD, Answer.READY)
    assert exported_ready(registry) == 1
    c.observe(POD, Answer.FAILED)  # one slow or negative answer: a busy machine, not an outage
    assert exported_ready(registry) == 1
    c.observe(POD, Answer.FAILED)
    assert exported_ready(registry) == 0
    clock.now += 5
    c.observe(POD, Answer.READY)
    assert exported_ready(registry) == 1
    c.observe(POD, Answer.GONE)  # nothing listens: the process is gone
    assert exported_ready(registry) == 0


def test_an_unready_spell_is_exported_for_at_least_the_hold() -> None:
    clock = Clock()
    c, registry = collector(clock, hold=1.0)
    c.observe(POD, Answer.READY)
    c.observe(POD, Answer.GONE)
    clock.now += 0.5
    c.observe(POD, Answer.READY)  # back after half a second: a scrape could fall on either side of it
    assert exported_ready(registry) == 0
    clock.now += 0.49
    c.observe(POD, Answer.READY)
    assert exported_ready(registry) == 0
    clock.now += 0.02
    c.observe(POD, Answer.READY)
    assert exported_ready(registry) == 1
    # a spell longer than the hold ends with the first success
    c.observe(POD, Answer.GONE)
    clock.now += 3
    c.observe(POD, Answer.READY)
    assert exported_ready(registry) == 1


def test_without_a_hold_a_success_ends_the_spell_at_once() -> None:
    clock = Clock()
    c, registry = collector(clock, hold=0.0)
    c.observe(POD, Answer.GONE)
    c.observe(POD, Answer.READY)
    assert exported_ready(registry) == 1


def test_a_restart_the_probes_missed_begins_a_spell_and_one_they_saw_does_not() -> None:
    clock = Clock()
    c, registry = collector(clock)
    c.observe(POD, Answer.READY)
    alive_at = clock.now
    clock.now += 1.5  # killed and back between two probes; supervisord shows the new pid now
    c.restarted(POD, alive_at)
    assert exported_ready(registry) == 0
    clock.now += 1.0
    c.observe(POD, Answer.READY)
    assert exported_ready(registry) == 1
    # the probes saw this one: a spell began after the old process was last seen, so no second spell
    alive_at = clock.now
    clock.now += 0.3
    c.observe(POD, Answer.GONE)
    clock.now += 1.2
    c.observe(POD, Answer.READY)
    assert exported_ready(registry) == 1
    c.restarted(POD, alive_at)
    assert exported_ready(registry) == 1
    c.restarted("audit-service-9", alive_at)  # a pod removed by a scale meanwhile: ignored


def test_a_bool_is_read_as_ready_or_failed() -> None:
    clock = Clock()
    c, registry = collector(clock, threshold=1)
    c.observe(POD, True)
    assert exported_ready(registry) == 1
    c.observe(POD, False)
    assert exported_ready(registry) == 0


@pytest.fixture
def server() -> Iterator[dict[str, object]]:
    """A real HTTP server whose answer the test sets: ``status`` and ``delay`` (seconds)."""
    behaviour: dict[str, object] = {"status": 200, "delay": 0.0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(float(behaviour["delay"]))  # type: ignore[arg-type]
            self.send_response(int(behaviour["status"]))  # type: ignore[call-overload]
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    behaviour["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/actuator/health/readiness"
    yield behaviour
    httpd.shutdown()
    httpd.server_close()


def test_the_probe_tells_a_refused_connection_from_a_slow_or_negative_answer(server: dict[str, object]) -> None:
    url = str(server["url"])
    assert answer(url, 1.0) is Answer.READY
    server["status"] = 307
    assert answer(url, 1.0) is Answer.READY  # the kubelet's rule: 3xx is a success
    server["status"] = 503
    assert answer(url, 1.0) is Answer.FAILED
    server["status"], server["delay"] = 200, 0.5
    assert answer(url, 0.1) is Answer.FAILED
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert answer(f"http://127.0.0.1:{closed}/actuator/health/readiness", 1.0) is Answer.GONE


def test_the_prober_loop_reports_a_restart_with_when_the_old_process_was_last_seen() -> None:
    """The driver with fake pids: b's pid changes (a kill and supervisord's restart, with a tick in between
    where it is not RUNNING); the hook hears b once, with a time before the tick that saw it down."""
    fast = lv.ProbeTiming(period_s=0.05, timeout_s=0.01, failure_threshold=3, startup_period_s=0.02,
                          startup_timeout_s=0.01, startup_failure_threshold=30, termination_grace_s=0)
    live = lv.Liveness(["a", "b"], fast)
    pids: dict[str, int | None] = {"a": 10, "b": 20}
    heard: list[tuple[str, float, float]] = []
    marks: dict[str, float] = {}

    def on_restart(pod: str, alive_at: float) -> None:
        heard.append((pod, alive_at, time.monotonic()))

    stop = threading.Event()
    thread = threading.Thread(target=lv.run_loop, args=(live, {"a": "a", "b": "b"}, lambda: dict(pids),
                                                         lambda u, t: True, lambda p, pid: "no", stop, 0.01),
                              kwargs={"on_restart": on_restart}, daemon=True)
    thread.start()
    try:
        time.sleep(0.1)
        marks["killed"] = time.monotonic()
        pids["b"] = None
        time.sleep(0.1)
        pids["b"] = 21
        deadline = time.monotonic() + 10
        while not heard and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
    finally:
        stop.set()
        thread.join(5)
    assert [pod for pod, _, _ in heard] == ["b"]
    _, alive_at, at = heard[0]
    assert alive_at <= marks["killed"] < at
    assert marks["killed"] - alive_at < 0.1  # the last tick that saw pid 20, not some earlier one


def test_the_stack_holds_each_spell_for_two_scrape_intervals(tmp_path: Path) -> None:
    from stack.components import audit_service, pod_state_exporter
    from stack.components.prometheus import FAST_SCRAPE
    from stack.context import StackContext, Tools
    from stack.endpoints import Endpoints

    interval_s = int(FAST_SCRAPE["exporters"]["scrape_interval"].removesuffix("ms")) / 1000
    ctx = StackContext(profile="minimal", endpoints=Endpoints(23000), data_dir=tmp_path, tools=Tools.discover())
    [comp] = pod_state_exporter.pod_state_exporter(ctx, audit_service.audit_service(ctx), audit_service.GROUP)
    cmd = comp.command
    assert float(cmd[cmd.index("--min-unready") + 1]) == 2 * interval_s
