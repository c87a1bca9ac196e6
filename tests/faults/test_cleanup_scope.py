"""`resilience cleanup` touches one stack unless told otherwise (no stack needed: nothing is reverted for real).

The journal is shared by everyone on the machine, so a bare ``cleanup`` must not revert other
people's faults: it takes the default stack of ``resilience run``; ``--all`` takes every stack.
"""

import json
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from faults import UNDO_ACTIVITIES, journal
from faults import cleanup as cleanup_mod
from faults.cli import cleanup_command
from resilience.cli import cli as resilience_cli
from stack.endpoints import DEFAULT_PORT_BASE
from target.settings import resolve

UNDO = {"activity": "faults.network_partition.remove_partition", "arguments": {"edge": "kafka"}}


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RESILIENCE_TARGET_CONFIG", "RESILIENCE_PORT_BASE", "RESILIENCE_DATA_DIR", "RESILIENCE_STATE_DIR",
                "RESILIENCE_RUN_ID", "KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)


def inject(state_dir: Path, run_id: str, **cfg: Any) -> str:
    settings = resolve({"fault_state_dir": str(state_dir), "run_id": run_id, **cfg})
    path, entry = journal.new_entry(settings, "faults.network_partition.partition_network", {"edge": "kafka"},
                                    UNDO, None, {})
    journal.update(path, status="active")
    return str(entry["run_id"])


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    """Three runs on three stacks: the default local stack, another local stack, a kubernetes namespace."""
    state = tmp_path / "journal"
    inject(state, "on-default", stack_port_base=DEFAULT_PORT_BASE)
    inject(state, "on-19500", stack_port_base=19500)
    inject(state, "on-k8s", target="kubernetes", k8s_namespace="sql-audit", k8s_context="staging")
    return state


def cleanup(state: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cleanup_command, [*args, "--state-dir", str(state)], env=env)


def listed(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return sorted(r["run_id"] for r in json.loads(result.stdout)["reverted"])


def test_without_options_only_the_default_stack_is_cleaned(journal_dir: Path) -> None:
    assert DEFAULT_PORT_BASE == 19000  # the default of `resilience run`
    assert listed(cleanup(journal_dir, "--dry-run", "--json")) == ["on-default"]


def test_the_default_stack_follows_RESILIENCE_PORT_BASE_like_run(journal_dir: Path) -> None:
    result = cleanup(journal_dir, "--dry-run", "--json", env={"RESILIENCE_PORT_BASE": "19500"})
    assert listed(result) == ["on-19500"]


def test_port_base_picks_one_local_stack(journal_dir: Path) -> None:
    assert listed(cleanup(journal_dir, "--dry-run", "--json", "--port-base", "19500")) == ["on-19500"]


def test_all_takes_every_recorded_stack(journal_dir: Path) -> None:
    assert listed(cleanup(journal_dir, "--dry-run", "--json", "--all")) == ["on-19500", "on-default", "on-k8s"]


def test_a_run_id_alone_is_scope_enough(journal_dir: Path) -> None:
    assert listed(cleanup(journal_dir, "--dry-run", "--json", "--run", "on-k8s")) == ["on-k8s"]
    assert listed(cleanup(journal_dir, "--dry-run", "--json", "--run", "on-k8s", "--port-base", "19500")) == []


def test_all_with_port_base_is_a_usage_error(journal_dir: Path) -> None:
    result = cleanup(journal_dir, "--all", "--port-base", "19500")
    assert result.exit_code == 2
    assert "--all" in result.output and "--port-base" in result.output


def test_nothing_in_scope_says_where_the_open_faults_are(journal_dir: Path) -> None:
    result = cleanup(journal_dir, "--dry-run", "--port-base", "19040")
    assert result.exit_code == 0, result.output
    assert "no open faults on the local stack at port base 19040" in result.output
    assert "3 open on other stacks" in result.output and "--all" in result.output
    assert "kubernetes context staging, namespace sql-audit" in result.output


def test_a_real_cleanup_reverts_only_its_scope(journal_dir: Path, reverted: list[str]) -> None:
    result = cleanup(journal_dir)
    assert result.exit_code == 0, result.output
    assert reverted == ["on-default"]
    assert sorted(e["run_id"] for _, e in journal.open_entries(journal_dir)) == ["on-19500", "on-k8s"]
    assert cleanup(journal_dir, "--all").exit_code == 0
    assert sorted(reverted) == ["on-19500", "on-default", "on-k8s"]


def test_help_explains_the_default_and_all() -> None:
    result = CliRunner().invoke(resilience_cli, ["cleanup", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--all" in text
    assert "Without --all, --port-base or --run" in text
    assert "every stack recorded in the journal" in text


def test_an_entry_journaled_under_the_old_module_name_is_still_reverted(tmp_path: Path) -> None:
    """faults.config became faults.checker_config: a journal left by a runner of before the rename still cleans."""
    settings = resolve({"fault_state_dir": str(tmp_path / "journal"), "run_id": "old-name", "stack_port_base": 20000,
                        "stack_data_dir": str(tmp_path / "no-stack"), "watchdog": False})
    undo = {"activity": "faults.config.restore_checker_config", "arguments": {"group": "audit-service"}}
    path, _ = journal.new_entry(settings, "faults.config.change_checker_threshold", {}, undo, None, {})
    journal.update(path, status="active")
    [result] = cleanup_mod.cleanup(tmp_path / "journal", "old-name")
    assert result.ok, result.detail
    assert result.detail.startswith("nothing to restore")  # the real remove ran: no stack, no change recorded
    assert journal.open_entries(tmp_path / "journal") == []


@pytest.mark.parametrize("activity", sorted(UNDO_ACTIVITIES))
def test_every_faults_undo_is_run_from_its_journal_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         activity: str) -> None:
    """What cleanup, the expiry timers and the watchdog run for a killed runner's fault. Before the registry, the undo
    had to start with remove_/restore_/resume_/start_: the heap, OOM, poison, stale-token and split-brain faults were
    "no usable undo" and stayed (found by the heap fault's SIGKILL case, 2026-12-02)."""
    module, _, function = activity.rpartition(".")
    calls: list[dict[str, Any]] = []
    fake = types.SimpleNamespace(**{function: lambda **kw: calls.append(kw) or {"details": {"changed": "undone"}}})
    monkeypatch.setattr(cleanup_mod.importlib, "import_module", lambda name: fake if name == module else None)
    settings = resolve({"fault_state_dir": str(tmp_path / "journal"), "run_id": "r", "stack_port_base": 20000,
                        "watchdog": False})
    path, entry = journal.new_entry(settings, f"{module}.inject", {}, {"activity": activity, "arguments": {"x": 1}},
                                    None, {})
    journal.update(path, status="active")
    result = cleanup_mod.revert_entry(path, journal.read(path) or entry, by="test")
    assert result.ok, result.detail
    assert calls and calls[0]["x"] == 1
    assert journal.open_entries(tmp_path / "journal") == []


@pytest.mark.parametrize("activity", ["faults.kafka_broker.stop_kafka_broker", "faults.heap.fill_heap",
                                      "os.system", "faults.heap.release_heap_and_more"])
def test_a_journal_entry_naming_anything_but_an_undo_is_not_run(tmp_path: Path, activity: str) -> None:
    settings = resolve({"fault_state_dir": str(tmp_path / "journal"), "run_id": "r", "stack_port_base": 20000,
                        "watchdog": False})
    path, entry = journal.new_entry(settings, "faults.heap.fill_heap", {}, {"activity": activity, "arguments": {}},
                                    None, {})
    result = cleanup_mod.revert_entry(path, entry, by="test")
    assert not result.ok and "no usable undo" in result.detail


def test_an_entry_says_who_reverted_it_from_its_first_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The remove activity closes the entries it undoes (engine.remove), before revert_entry closes the entry again:
    without `journal.reverting_as` the first write named the activity ("remove_partition (pid N)") and a reader
    between the two writes (the cluster test of a killed runner's watchdog, 2026-12-03) saw no watchdog."""
    settings = resolve({"fault_state_dir": str(tmp_path / "journal"), "run_id": "who", "stack_port_base": 20010,
                        "stack_data_dir": str(tmp_path / "no-stack"), "watchdog": False})
    path, entry = journal.new_entry(settings, "faults.network_partition.partition_network", {"edge": "kafka"},
                                    UNDO, None, {})
    journal.update(path, status="active")
    written: list[str] = []
    real_close = journal.close

    def recording_close(p: Path, by: str, error: str | None = None) -> journal.Entry | None:
        written.append(by)
        return real_close(p, by, error)

    monkeypatch.setattr(journal, "close", recording_close)
    result = cleanup_mod.revert_entry(path, entry, by="watchdog pid 1 (runner gone)")
    assert result.ok, result.detail  # the stack is not running: nothing to undo, the entry closes
    assert written and set(written) == {"watchdog pid 1 (runner gone)"}, written
