"""The liveness prober's decisions (stack/liveness.py) with a fake clock, fake probes and fake kills; and its
timing against the StatefulSet manifest it claims to follow. No stack needed."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from stack import liveness as lv
from stack.errors import ProcessGone, StackError

TIMING = lv.ProbeTiming(period_s=10, timeout_s=2, failure_threshold=3, startup_period_s=2, startup_timeout_s=1,
                        startup_failure_threshold=30, termination_grace_s=30)


def started(pods: list[str], pid: int = 100, now: float = 0.0) -> lv.Liveness:
    """A prober whose pods have each passed their startup probe (pid 100, 101...)."""
    live = lv.Liveness(pods, TIMING)
    for i, pod in enumerate(pods):
        live.observe_pid(pod, pid + i, now)
    for pod, kind, p in live.due(now):
        assert kind == "Startup"
        assert not live.observe_probe(pod, kind, p, True)
    return live


def fail_until_kill(live: lv.Liveness, pod: str, start: float) -> float:
    """Probe ``pod`` failing at every due time from ``start``; returns when the kill was decided."""
    now = start
    while now < start + 1000:
        for p, kind, pid in live.due(now):
            if p == pod and live.observe_probe(p, kind, pid, False):
                return now
        now += 0.5
    raise AssertionError("never killed")


def test_kill_after_failure_threshold_consecutive_failures_within_the_bound() -> None:
    live = started(["a"])
    # healthy for a while: probed every period, never killed
    now = 0.0
    probed = []
    while now < 60:
        for pod, kind, pid in live.due(now):
            probed.append(now)
            assert kind == "Liveness"
            assert not live.observe_probe(pod, kind, pid, True)
        now += 0.5
    assert probed[1] - probed[0] == TIMING.period_s
    hang = 61.0
    killed_at = fail_until_kill(live, "a", hang)
    assert live.snapshot()["a"]["phase"] == lv.KILLING
    assert live.snapshot()["a"]["failures"] == 3
    assert killed_at - hang <= TIMING.detection_bound_s
    assert killed_at - hang >= TIMING.period_s * (TIMING.failure_threshold - 1)


def test_one_success_resets_the_count() -> None:
    live = started(["a"])
    now, answers = 0.0, iter([False, False, True, False, False, True, False, False])
    while now < 200:
        for pod, kind, pid in live.due(now):
            ok = next(answers, True)
            assert not live.observe_probe(pod, kind, pid, ok), f"killed at {now} after {ok}"
        now += 1.0


def test_no_liveness_probe_before_startup_succeeds_and_a_failed_startup_is_killed() -> None:
    live = lv.Liveness(["a"], TIMING)
    live.observe_pid("a", 7, 0.0)
    kinds, killed = set(), None
    now = 0.0
    while killed is None and now < 500:
        for pod, kind, pid in live.due(now):
            kinds.add(kind)
            if live.observe_probe(pod, kind, pid, False):
                killed = now
        now += 0.5
    assert kinds == {"Startup"}
    assert killed == pytest.approx(TIMING.startup_period_s * (TIMING.startup_failure_threshold - 1))


def test_a_longer_startup_allowance_is_honoured() -> None:
    longer = TIMING.with_startup_allowance(420)
    assert longer.startup_failure_threshold == 210
    assert TIMING.with_startup_allowance(10).startup_failure_threshold == 30  # never below the manifest's


def test_new_pid_counts_a_restart_and_starts_over_with_the_startup_probe() -> None:
    live = started(["a", "b"])
    assert not live.observe_pid("a", 100, 1.0)  # same pid: nothing
    assert live.observe_pid("a", 200, 2.0)  # a crash restarted by supervisord counts too
    snap = live.snapshot()
    assert snap["a"]["restarts"] == 1 and snap["a"]["phase"] == lv.STARTUP and snap["b"]["restarts"] == 0
    # the process gone, then back with another pid: one restart, not two
    assert not live.observe_pid("a", None, 3.0)
    assert live.snapshot()["a"]["phase"] == lv.DOWN
    assert live.observe_pid("a", 300, 4.0)
    assert live.snapshot()["a"]["restarts"] == 2


def test_after_a_kill_nothing_is_probed_until_the_new_pid_and_stale_answers_are_ignored() -> None:
    live = started(["a"])
    fail_until_kill(live, "a", 0.0)
    assert live.due(1000.0) == []  # killing: not probed, not killed twice
    assert not live.observe_probe("a", "Liveness", 100, False)  # a late answer about the old pid
    live.kill_done("a", 100)
    assert live.observe_pid("a", 101, 1001.0)
    assert live.snapshot()["a"] == {"restarts": 1, "phase": lv.STARTUP, "pid": 101, "failures": 0,
                                    "probes": {("Liveness", "failed"): 3, ("Startup", "successful"): 1}}
    assert not live.observe_probe("a", "Liveness", 100, False)  # the old process's answer: ignored


def test_terminate_sigterm_then_sigkill_after_the_grace_period() -> None:
    sent: list[int] = []

    def killpg(pid: int, sig: int) -> None:
        sent.append(sig)

    waits: list[float] = []

    def wait_dead(pid: int, timeout: float) -> bool:
        waits.append(timeout)
        return sent[-1] == signal.SIGKILL  # a stopped process ignores SIGTERM: only SIGKILL ends it

    assert "SIGKILLed" in lv.terminate(5, 30.0, killpg, wait_dead)
    assert sent == [signal.SIGTERM, signal.SIGKILL] and waits[0] == 30.0

    sent.clear()
    assert "exited on SIGTERM" in lv.terminate(5, 30.0, killpg, lambda pid, t: True)
    assert sent == [signal.SIGTERM]

    def gone(pid: int, sig: int) -> None:
        raise ProcessGone("gone")

    assert "already gone" in lv.terminate(5, 30.0, gone, wait_dead)


def test_run_loop_kills_the_hung_pod_only_and_counts_its_restart() -> None:
    """The driver with fake boundaries: pod b stops answering; only b is killed (once, with its pid), and the
    new pid supervisord gives it is counted."""
    fast = lv.ProbeTiming(period_s=0.05, timeout_s=0.01, failure_threshold=3, startup_period_s=0.02,
                          startup_timeout_s=0.01, startup_failure_threshold=30, termination_grace_s=0)
    live = lv.Liveness(["a", "b"], fast)
    pids = {"a": 10, "b": 20}
    hung = {"b": False}
    killed: list[tuple[str, int]] = []
    lock = threading.Lock()

    def probe(url: str, timeout: float) -> bool:
        return not hung.get(url, False)

    def kill(pod: str, pid: int) -> str:
        with lock:
            killed.append((pod, pid))
            pids[pod] = pid + 1  # supervisord's restart
            hung[pod] = False
        return "killed"

    stop = threading.Event()
    thread = threading.Thread(target=lv.run_loop, args=(live, {"a": "a", "b": "b"}, lambda: dict(pids), probe, kill,
                                                         stop, 0.01), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while live.snapshot()["b"]["phase"] != lv.LIVE and time.monotonic() < deadline:
            time.sleep(0.01)
        hung["b"] = True
        while live.snapshot()["b"]["restarts"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert killed == [("b", 20)]
    snap = live.snapshot()
    assert snap["b"]["restarts"] == 1 and snap["b"]["pid"] == 21 and snap["a"]["restarts"] == 0


def test_collector_exports_kube_state_metrics_names() -> None:
    live = started(["audit-service-0"])
    live.observe_pid("audit-service-0", 555, 1.0)
    families = {f.name: f for f in lv.LivenessCollector(live, "local", "audit-service").collect()}
    restarts = families["kube_pod_container_status_restarts"].samples
    assert [(s.name, s.labels, s.value) for s in restarts] == [
        ("kube_pod_container_status_restarts_total",
         {"namespace": "local", "pod": "audit-service-0", "container": "audit-service"}, 1.0)]
    probes = families["prober_probe"].samples
    assert probes[0].labels["probe_type"] == "Startup" and probes[0].labels["result"] == "successful"


# ------------------------------------------------------------------------ the manifest is the one place
def test_timing_is_the_statefulset_manifests() -> None:
    doc = yaml.safe_load(lv.MANIFEST.read_text())
    spec = doc["spec"]["template"]["spec"]
    probe = spec["containers"][0]["livenessProbe"]
    startup = spec["containers"][0]["startupProbe"]
    t = lv.manifest_timing()
    assert (t.period_s, t.timeout_s, t.failure_threshold) == (probe["periodSeconds"], probe["timeoutSeconds"],
                                                              probe["failureThreshold"])
    assert (t.startup_period_s, t.startup_failure_threshold) == (startup["periodSeconds"],
                                                                 startup["failureThreshold"])
    assert t.startup_timeout_s == startup.get("timeoutSeconds", 1)  # Kubernetes' default
    assert t.termination_grace_s == spec["terminationGracePeriodSeconds"]
    assert t.restart_bound_s == probe["periodSeconds"] * probe["failureThreshold"] + probe["timeoutSeconds"] \
        + spec["terminationGracePeriodSeconds"] + lv.RESTART_ALLOWANCE_S


def test_the_stack_passes_the_manifest_timing_to_its_prober(tmp_path: Path) -> None:
    from stack.components import audit_service, pod_state_exporter
    from stack.context import StackContext, Tools
    from stack.endpoints import Endpoints

    ctx = StackContext(profile="minimal", endpoints=Endpoints(23000), data_dir=tmp_path, tools=Tools.discover())
    replicas = audit_service.audit_service(ctx)
    [comp] = pod_state_exporter.pod_state_exporter(ctx, replicas, audit_service.GROUP)
    cmd = comp.command
    expected = lv.manifest_timing().with_startup_allowance(max(r.startup_timeout for r in replicas)).as_args()
    joined = " ".join(cmd)
    assert " ".join(expected) in joined
    assert f"--supervisor-socket {ctx.data_dir / 'supervisor.sock'}" in joined
    livenesses = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--liveness"]
    assert livenesses == [f"audit-service-{i}=http://127.0.0.1:{23020 + i}/actuator/health/liveness" for i in range(3)]


def test_liveness_switch_off_leaves_the_prober_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stack.components import audit_service, pod_state_exporter
    from stack.context import StackContext, Tools
    from stack.endpoints import Endpoints

    monkeypatch.setenv(pod_state_exporter.LIVENESS_SWITCH, "off")
    ctx = StackContext(profile="minimal", endpoints=Endpoints(23000), data_dir=tmp_path, tools=Tools.discover())
    [comp] = pod_state_exporter.pod_state_exporter(ctx, audit_service.audit_service(ctx), audit_service.GROUP)
    assert "--liveness" not in comp.command


@pytest.mark.parametrize(("edit", "field"), [
    (lambda s: s["containers"][0]["livenessProbe"].update(periodSeconds=0), "livenessProbe.periodSeconds"),
    (lambda s: s["containers"][0].pop("startupProbe"), "startupProbe: missing"),
    (lambda s: s.update(terminationGracePeriodSeconds="x"), "terminationGracePeriodSeconds"),
])
def test_a_bad_manifest_names_the_field(tmp_path: Path, edit, field: str) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(lv.MANIFEST.read_text())
    edit(doc["spec"]["template"]["spec"])
    path = tmp_path / "sts.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(StackError, match=field) as err:
        lv.manifest_timing(path)
    assert str(path) in str(err.value)


def test_the_exporter_refuses_liveness_options_it_cannot_act_on() -> None:
    import argparse

    from stack import liveness_prober

    ap = argparse.ArgumentParser()
    lv.add_arguments(ap)

    def error(message: str) -> None:
        raise ValueError(message)

    with pytest.raises(ValueError, match="--liveness needs --supervisor-socket"):
        liveness_prober.start_from_args(ap.parse_args(["--liveness", "a=http://x/l"]), "local", lambda u, t: True,
                                        error)
    with pytest.raises(ValueError, match="expected POD=http"):
        liveness_prober.start_from_args(ap.parse_args(["--liveness", "a", "--supervisor-socket", "/s"]), "local",
                                        lambda u, t: True, error)
    assert liveness_prober.start_from_args(ap.parse_args([]), "local", lambda u, t: True, error) is None


def test_a_replica_added_by_a_scale_is_probed_and_restarted_like_the_others() -> None:
    """The driver with fake boundaries: the prober starts with a and b; a scale adds c (and removes b) while it
    runs; c goes through its startup probe, hangs, and is killed and counted; b, removed, is never probed again.
    Without ``set_pods`` c is never probed: the test times out waiting for its kill."""
    fast = lv.ProbeTiming(period_s=0.05, timeout_s=0.01, failure_threshold=3, startup_period_s=0.02,
                          startup_timeout_s=0.01, startup_failure_threshold=30, termination_grace_s=0)
    live = lv.Liveness(["a", "b"], fast)
    urls = {"a": "a", "b": "b"}
    pids = {"a": 10, "b": 20, "c": 30}
    hung = {"c": False}
    probed: list[str] = []
    killed: list[tuple[str, int]] = []
    lock = threading.Lock()

    def probe(url: str, timeout: float) -> bool:
        with lock:
            probed.append(url)
        return not hung.get(url, False)

    def kill(pod: str, pid: int) -> str:
        with lock:
            killed.append((pod, pid))
            pids[pod] = pid + 1
            hung[pod] = False
        return "killed"

    stop = threading.Event()
    thread = threading.Thread(target=lv.run_loop, args=(live, urls, lambda: dict(pids), probe, kill, stop, 0.01),
                              daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while live.snapshot()["b"]["phase"] != lv.LIVE and time.monotonic() < deadline:
            time.sleep(0.01)
        urls.pop("b")
        urls["c"] = "c"
        live.set_pods(["a", "c"])
        with lock:
            probed.clear()
        while ("c" not in live.snapshot() or live.snapshot()["c"]["phase"] != lv.LIVE) and time.monotonic() < deadline:
            time.sleep(0.01)
        hung["c"] = True
        while live.snapshot()["c"]["restarts"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert killed == [("c", 30)]
    snap = live.snapshot()
    assert sorted(snap) == ["a", "c"] and snap["c"]["restarts"] == 1 and snap["a"]["restarts"] == 0
    assert "b" not in probed and "c" in probed


def test_liveness_follows_the_replicas_file_through_the_exporters_hook() -> None:
    """``follow`` maps each readiness URL to its liveness sibling; a URL that is not a readiness endpoint is named."""
    assert lv.liveness_url("http://127.0.0.1:19101/actuator/health/readiness") == (
        "http://127.0.0.1:19101/actuator/health/liveness")
    with pytest.raises(StackError, match="'http://x/ready' does not end in /readiness"):
        lv.liveness_url("http://x/ready")
