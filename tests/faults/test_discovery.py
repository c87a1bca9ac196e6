"""The suite is a Chaos Toolkit extension: one discovery lists every fault, load and probe activity, well formed."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import chaossqlaudit
import faults

EXPECTED = {
    "kill_replicas", "restore_replicas", "kill_process", "restore_process",
    "partition_network", "remove_partition", "add_latency", "remove_latency",
    "add_packet_loss", "remove_packet_loss", "fail_over_postgres", "restore_postgres",
    "stall_clickhouse", "resume_clickhouse", "stop_clickhouse", "start_clickhouse",
    "stop_kafka_broker", "start_kafka_broker", "oom_kill_replica", "release_memory_limit", "fill_heap", "release_heap",
    "change_checker_threshold", "restore_checker_config", "take_backup", "lose_store_data", "restore_from_backup",
    "inject_poison", "stop_poison", "send_stale_tokens", "stop_stale_tokens",
    "isolate_postgres_leader", "heal_postgres_leader", "lose_zookeeper", "restore_zookeeper",
    "scale_replicas", "restore_replica_count",
    "hang_replicas", "resume_replicas",
}
REPO = Path(faults.__file__).resolve().parent.parent


LOAD = {"start_load", "stop_load"}
PROBES = {"config_in_effect", "consumer_lag", "data_loss", "drain", "error_ratio", "latency_p95_seconds",
          "ready_replicas", "recovery_seconds", "slo_value", "throughput_eps", "split_brain_writes"}


def test_discover_lists_every_activity_with_docs_and_standard_tail() -> None:
    discovery = chaossqlaudit.discover()
    activities = {a["name"]: a for a in discovery["activities"]}
    assert set(activities) == EXPECTED | LOAD | PROBES
    for name, activity in activities.items():
        assert activity["type"] == ("probe" if name in PROBES else "action"), name
        args = [a["name"] for a in activity["arguments"]]
        assert args[-2:] == ["configuration", "secrets"], (name, args)
        if name in LOAD | PROBES:
            continue
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


# The discovery command docs/faults.md gives, verbatim (run from the repository root, as a user types it).
DOCUMENTED = ".venv/bin/chaos discover sql-audit-resilience --no-install --discovery-path discovery.json"


def test_the_documented_discovery_command_lists_every_activity(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "faults.md").read_text()
    assert DOCUMENTED in doc, "docs/faults.md does not give the discovery command verbatim"
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(["bash", "-c", DOCUMENTED], capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    discovery = json.loads((tmp_path / "discovery.json").read_text())
    assert discovery["extension"]["name"] == "sql-audit-resilience"
    assert {a["name"] for a in discovery["activities"]} == EXPECTED | LOAD | PROBES


def test_chaos_discover_of_a_package_name_finds_no_distribution(tmp_path: Path) -> None:
    """Why the short form is not documented: `chaos discover faults` fails (and still exits 0)."""
    proc = subprocess.run([str(Path(sys.executable).parent / "chaos"), "discover", "faults", "--no-install",
                           "--discovery-path", str(tmp_path / "d.json")],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert "Package faults not found" in proc.stdout + proc.stderr
    assert not (tmp_path / "d.json").exists()


def test_every_injected_fault_journals_an_undo_that_cleanup_will_run() -> None:
    """Each ``engine.inject(__name__, fault, args, undo, ...)`` of a fault module names its undo; the journal keeps
    ``module.undo`` and cleanup, the expiry timers and the watchdog run only what :data:`faults.UNDO_ACTIVITIES`
    lists. A fault added without its undo there could never be reverted for a killed runner."""
    import ast
    import importlib

    journaled = set()
    for name in faults.ACTIVITY_MODULES:
        tree = ast.parse((REPO / (name.replace(".", "/") + ".py")).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "inject" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "engine":
                undo = node.args[3]
                assert isinstance(undo, ast.Constant), f"{name}: the undo of engine.inject must be a literal name"
                journaled.add(f"{name}.{undo.value}")
    assert journaled == faults.UNDO_ACTIVITIES
    for activity in faults.UNDO_ACTIVITIES:
        module, _, function = activity.rpartition(".")
        assert function in importlib.import_module(module).__all__, activity
