"""The package is a Chaos Toolkit extension: discovery lists every fault activity, well formed."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import faults

EXPECTED = {
    "kill_replicas", "restore_replicas", "kill_process", "restore_process",
    "partition_network", "remove_partition", "add_latency", "remove_latency",
    "add_packet_loss", "remove_packet_loss", "fail_over_postgres", "restore_postgres",
    "stall_clickhouse", "resume_clickhouse", "stop_clickhouse", "start_clickhouse",
    "stop_kafka_broker", "start_kafka_broker", "oom_kill_replica", "release_memory_limit",
    "change_checker_threshold", "restore_checker_config",
}
REPO = Path(faults.__file__).resolve().parent.parent


def test_discover_lists_every_activity_with_docs_and_standard_tail() -> None:
    discovery = faults.discover()
    activities = {a["name"]: a for a in discovery["activities"]}
    assert set(activities) == EXPECTED
    for name, activity in activities.items():
        assert activity["type"] == "action"
        args = [a["name"] for a in activity["arguments"]]
        assert args[-2:] == ["configuration", "secrets"], (name, args)
        doc = activity["doc"] or ""
        assert "Returns" in doc and "Raises" in doc, f"{name}: docstring lacks Returns/Raises"


def test_signatures_are_typed_and_positional_or_keyword() -> None:
    for module in faults.ACTIVITY_MODULES:
        mod = __import__(module, fromlist=["__all__"])
        for name in mod.__all__:
            sig = inspect.signature(getattr(mod, name))
            for param in sig.parameters.values():
                assert param.kind is param.POSITIONAL_OR_KEYWORD, (module, name, param.name)
                assert param.annotation is not param.empty, (module, name, param.name)
            assert sig.parameters["configuration"].default is None
            assert sig.parameters["secrets"].default is None


def test_chaos_discover_cli_lists_the_activities(tmp_path: Path) -> None:
    out = tmp_path / "discovery.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([str(Path(sys.executable).parent / "chaos"), "discover", "sql-audit-resilience",
                           "--no-install", "--discovery-path", str(out)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {a["name"] for a in json.loads(out.read_text())["activities"]}
    assert names == EXPECTED
