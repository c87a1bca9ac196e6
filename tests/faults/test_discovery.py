"""The package is a Chaos Toolkit extension: discovery lists every fault activity, well formed."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import faults
import probes

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


# The discovery commands docs/faults.md gives, verbatim (run from the repository root; see there why
# `chaos discover faults` cannot work: chaos discover resolves a distribution, ours is sql-audit-resilience).
DOCUMENTED = {
    "faults": ".venv/bin/chaos discover sql-audit-resilience --no-install --discovery-path discovery-faults.json",
    "probes": ".venv/bin/python -c 'import json, probes; print(json.dumps(probes.discover(), indent=2))'"
              " > discovery-probes.json",
}


def test_the_documented_discovery_commands_work(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "faults.md").read_text()
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user types it
    expected = {"faults": EXPECTED, "probes": {a["name"] for a in probes.discover()["activities"]}}
    for package, command in DOCUMENTED.items():
        assert command in doc, f"docs/faults.md does not give the {package} discovery command verbatim"
        proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, env=env,
                              cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        discovery = json.loads((tmp_path / f"discovery-{package}.json").read_text())
        assert discovery["extension"]["name"] == f"sql-audit-resilience-{package}"
        assert {a["name"] for a in discovery["activities"]} == expected[package]


def test_chaos_discover_of_a_package_name_finds_no_distribution(tmp_path: Path) -> None:
    """Why the short form is not documented: `chaos discover faults` fails (and still exits 0)."""
    proc = subprocess.run([str(Path(sys.executable).parent / "chaos"), "discover", "faults", "--no-install",
                           "--discovery-path", str(tmp_path / "d.json")],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert "Package faults not found" in proc.stdout + proc.stderr
    assert not (tmp_path / "d.json").exists()
