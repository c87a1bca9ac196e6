"""`resilience run` end to end on the real local stack: numbers, verdicts, secrets, failures.

One real replica-kill run (shortened pauses) is shared by the tests that only read its
directory; the failure tests make runs of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadtests.ledger import read_ledger
from probes import prom
from probes.slo import DEFAULT_SLO_FILE
from resilience.experiments import EXPERIMENTS_DIR
from resilience.judge import judge
from resilience.runner import RunOptions, RunResult, run
from stack.core import LocalStack

pytestmark = [pytest.mark.stack, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def short_experiment(tmp: Path, name: str = "pod_failure", warmup: int = 10, duration: int = 100) -> Path:
    """The catalogue's experiment with a shorter warm-up (the recovery probes observe until recovered)."""
    doc = yaml.safe_load((REPO / "experiments" / f"{name}.yaml").read_text())
    doc["method"][0]["pauses"] = {"after": warmup}
    doc["configuration"]["load_duration"]["default"] = str(duration)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def pod_run(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunResult]:
    """One real replica-kill run under load."""
    tmp = tmp_path_factory.mktemp("pod-run")
    yield run(RunOptions(experiment=str(short_experiment(tmp)), port_base=stack.endpoints.port_base,
                         data_dir=stack.data_dir, reports_dir=tmp / "reports", rate=200))


def test_replica_kill_passes_and_the_numbers_agree_with_ledger_and_journal(pod_run: RunResult) -> None:
    s = pod_run.summary
    assert pod_run.exit_code == 0, json.dumps(s["verdicts"], indent=1)
    ledger = read_ledger(pod_run.run_dir / "ledger")
    assert s["load"]["acknowledged"] == ledger.count > 0
    assert s["data_loss"]["acknowledged"] == ledger.count
    assert s["data_loss"]["stored"] == ledger.count and s["data_loss"]["lost"] == 0
    journal = json.loads((pod_run.run_dir / "journal.json").read_text())
    kill = next(r for r in journal["run"] if r["activity"]["name"] == "kill-one-replica")
    assert kill["status"] == "succeeded"
    fault = json.loads((pod_run.run_dir / "run.json").read_text())["fault"]
    kill_start = time.mktime(time.strptime(kill["start"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(fault["start"] - kill_start) < 2, (fault, kill["start"])
    rto = s["rto"]["replicas_ready"]
    assert rto["status"] == "recovered" and 0 < rto["rto_s"] < 60
    verdict = {v["slo"]: v for v in s["verdicts"]}
    assert verdict["rto_replicas_ready"]["measured"] == pytest.approx(rto["rto_s"], abs=1e-3)


def test_run_directory_holds_what_the_format_promises(pod_run: RunResult) -> None:
    d = pod_run.run_dir
    for name in ("run.json", "journal.json", "summary.json", "series.json", "report.html", "runner.log",
                 "recorded/prometheus.json", "recorded/store.json"):
        assert (d / name).is_file(), name
    series = json.loads((d / "series.json").read_text())
    assert set(series["series"]) >= {"consumer_lag", "latency_p95_s", "throughput_eps", "ready_replicas"}
    ready = [v for _, v in series["series"]["ready_replicas"]["points"]]
    assert min(ready) < 3 <= max(ready), "the plot should show the killed replica"


def test_offline_report_reproduces_the_verdicts(pod_run: RunResult) -> None:
    meta = json.loads((pod_run.run_dir / "run.json").read_text())
    again = judge(pod_run.run_dir, meta, "http://127.0.0.1:1", live=False)  # no Prometheus at all
    assert again.summary(meta["scenario"])["verdicts"] == pod_run.summary["verdicts"]
    cli = subprocess.run([sys.executable, "-m", "resilience.cli", "report", str(pod_run.run_dir)],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == pod_run.exit_code, cli.stdout + cli.stderr


def test_impossibly_tight_slo_exits_1_and_names_it(pod_run: RunResult, tmp_path: Path) -> None:
    cat = yaml.safe_load(DEFAULT_SLO_FILE.read_text())
    pod = next(s for s in cat["scenarios"] if s["id"] == "pod_failure")
    pod["rto"]["max_s"] = 0.001
    tight = tmp_path / "tight-slo.yaml"
    tight.write_text(yaml.safe_dump(cat, sort_keys=False))
    cli = subprocess.run([sys.executable, "-m", "resilience.cli", "report", str(pod_run.run_dir),
                          "--slo-file", str(tight)], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "fail" in cli.stdout and "rto_replicas_ready" in cli.stdout
    assert "objective <= 0.001" in cli.stdout


def test_prometheus_stopped_mid_run_is_inconclusive_rolls_back_and_fails_on_residue(stack: LocalStack,
                                                                                   tmp_path: Path) -> None:
    from faults import journal
    from target.settings import DEFAULT_STATE_DIR

    rpc = stack.supervisor.rpc
    stopped = threading.Event()

    def phase(name: str, detail: str) -> None:
        if name == "activity" and detail == "rto-replicas-ready" and not stopped.is_set():
            rpc.stopProcess("infra:prometheus", True)
            stopped.set()

    try:
        result = run(RunOptions(experiment=str(short_experiment(tmp_path, duration=60)),
                                port_base=stack.endpoints.port_base,
                                data_dir=stack.data_dir, reports_dir=tmp_path / "reports", rate=150),
                     phase=phase)
    finally:
        if stopped.is_set():
            stack.supervisor.rpc.startProcess("infra:prometheus", True)
    assert stopped.is_set(), "the test never stopped Prometheus"
    reasons = " ".join(v["reason"] for v in result.summary["verdicts"] if v["outcome"] == "inconclusive")
    assert f"Prometheus at {stack.endpoints.prometheus_url}" in reasons
    # Prometheus is still down when the run ends: the residue audit says the target is not back (exit 1).
    residue = next(v for v in result.summary["verdicts"] if v["slo"] == "residue")
    assert residue["outcome"] == "fail" and "program prometheus: STOPPED" in residue["reason"], residue
    assert result.exit_code == 1, json.dumps(result.summary["verdicts"], indent=1)
    run_id = json.loads((result.run_dir / "run.json").read_text())["run_id"]
    entries = journal.entries(Path(os.environ.get("RESILIENCE_STATE_DIR") or DEFAULT_STATE_DIR), run_id)
    assert entries and all(e["status"] == "reverted" for _, e in entries), [e["status"] for _, e in entries]
    infos = stack.supervisor.process_info()
    assert all(infos[f"audit-service-{i}"]["statename"] == "RUNNING" for i in range(3))
    prom.wait_ready(stack.endpoints.prometheus_url, timeout_s=30)


def test_bad_input_is_refused_before_anything_is_injected(stack: LocalStack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: no method\n")
    bad_mix = tmp_path / "bad_mix.yaml"
    doc = yaml.safe_load((EXPERIMENTS_DIR / "pod_failure.yaml").read_text())
    doc["method"][0]["provider"]["arguments"]["mix"] = {"slow_fractoin": 0.1}
    bad_mix.write_text(yaml.safe_dump(doc))
    heap_effect = tmp_path / "heap_effect.yaml"  # a JVM's measure, on the Python service
    doc = yaml.safe_load((EXPERIMENTS_DIR / "pod_failure.yaml").read_text())
    doc["extensions"][0]["expect_effect"] = [{"measure": "heap_used_ratio", "at_least": 0.5}]
    heap_effect.write_text(yaml.safe_dump(doc))
    cases: list[tuple[list[str], str]] = [
        (["run", "no_such_scenario"], "no experiment named 'no_such_scenario'"),
        (["run", str(bad)], f"{bad}: invalid experiment"),
        (["run", "pod_failure", "--shape", "zigzag"], "Invalid value for '--shape'"),
        (["run", "pod_failure", "--rate", "0"], "Invalid value for '--rate'"),
        (["run", "pod_failure", "--slo-file", str(tmp_path / "none.yaml")], "none.yaml: cannot read"),
        (["run", "pod_failure", "--target", "kubernetes"], "target kubernetes needs --prometheus-url"),
        (["run", "stale_api_key"], "judged on stale_tokens_served, which needs the service's read API; the python "
                                   "service has none"),
        (["run", str(bad_mix)], f"{bad_mix}: method[0] (start-load).arguments.mix.slow_fractoin: unknown knob"),
        (["run", str(heap_effect)], "'python-reference']) do not define ['heap_used_ratio']: its effect cannot be "
                                    "measured"),
    ]
    before = _journal_size()
    for args, message in cases:
        cli = subprocess.run([sys.executable, "-m", "resilience.cli", *args, "--port-base",
                              str(stack.endpoints.port_base), "--data-dir", str(stack.data_dir)],
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 2, (args, cli.stdout, cli.stderr)
        assert message in cli.stderr, (args, cli.stderr)
    assert _journal_size() == before, "a fault was recorded although the input was bad"


def _journal_size() -> int:
    from target.settings import DEFAULT_STATE_DIR

    state = Path(os.environ.get("RESILIENCE_STATE_DIR") or DEFAULT_STATE_DIR)
    return len(list(state.rglob("*.json"))) if state.exists() else 0


def test_grafana_annotation_is_posted_without_leaking_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grafana is an external boundary: a local HTTP server stands in for its annotation API."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from resilience.grafana import annotate_fault

    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"id": 1, "message": "Annotation added"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("RESILIENCE_GRAFANA_URL", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("RESILIENCE_GRAFANA_TOKEN", "tok-123")
        answer = annotate_fault({"scenario": "pod_failure", "run_id": "r1", "ended_at": 110.0,
                                 "fault": {"name": "kill", "start": 100.0, "end": 101.5}}, "pass")
    finally:
        server.shutdown()
    assert answer == {"id": 1, "message": "Annotation added"}
    assert seen[0]["path"] == "/api/annotations" and seen[0]["auth"] == "Bearer tok-123"
    assert seen[0]["body"]["time"] == 100_000 and seen[0]["body"]["timeEnd"] == 101_500
    assert {"chaos", "pod_failure", "pass"} <= set(seen[0]["body"]["tags"])
    assert "tok-123" not in json.dumps(seen[0]["body"])


def test_rows_deleted_behind_the_suites_back_fail_and_are_named(pod_run: RunResult, stack: LocalStack,
                                                                tmp_path: Path) -> None:
    """Sabotage: delete K acknowledged events from ClickHouse after the run, judge again live: FAIL, those K."""
    import shutil

    from clickhouse_driver import Client

    copy = Path(shutil.copytree(pod_run.run_dir, tmp_path / "sabotaged"))
    run_doc = json.loads((copy / "run.json").read_text())
    acked = sorted(read_ledger(copy / "ledger").acked)
    victims = acked[:: max(1, len(acked) // 7)][:7]
    ch = Client(host="127.0.0.1", port=stack.endpoints.clickhouse_port, connect_timeout=5)
    try:
        ids = ", ".join(f"toUUID('{v}')" for v in victims)
        ch.execute(f"ALTER TABLE sqlaudit.audit_events DELETE WHERE event_id IN ({ids})")
        deadline = time.monotonic() + 60
        while ch.execute(f"SELECT count() FROM sqlaudit.audit_events WHERE event_id IN ({ids})")[0][0]:
            assert time.monotonic() < deadline, "ClickHouse did not apply the DELETE mutation within 60 s"
            time.sleep(0.5)
    finally:
        ch.disconnect()
    j = judge(copy, run_doc, stack.endpoints.prometheus_url, live=True,
              clickhouse=(stack.endpoints.clickhouse_host, stack.endpoints.clickhouse_port),
              drained={"drained": True, "reason": ""})
    loss = next(v for v in j.verdicts if v.slo == "data_loss")
    assert loss.outcome.value == "fail" and loss.measured == len(victims), loss
    listed = sorted(json.loads(line)["event_id"] for line in (copy / "lost.jsonl").read_text().splitlines())
    assert listed == sorted(victims)
