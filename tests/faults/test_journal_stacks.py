"""Which stack a journal entry belongs to (no stack needed: entries are written, nothing is applied).

A remove closes the open entries *of its own stack* whose undo is that very call. The stack of a
local fault is its port base and data dir; of a kubernetes fault, its kube context and namespace.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from faults import journal
from target.settings import TargetSettings, resolve

UNDO = {"activity": "faults.network_partition.remove_partition", "arguments": {"edge": "kafka"}}
ACTION = "faults.network_partition.partition_network"


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the caller's environment picks a stack, a cluster or a journal for these tests."""
    for var in ("RESILIENCE_TARGET_CONFIG", "RESILIENCE_PORT_BASE", "RESILIENCE_DATA_DIR", "RESILIENCE_STATE_DIR",
                "RESILIENCE_RUN_ID", "KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)


def settings(state_dir: Path, **cfg: Any) -> TargetSettings:
    return resolve({"fault_state_dir": str(state_dir), "run_id": "run-a", "watchdog": False,
                                        **cfg})


def k8s(state_dir: Path, namespace: str, context: str | None = "staging", **cfg: Any) -> TargetSettings:
    keys: dict[str, Any] = {"target": "kubernetes", "k8s_namespace": namespace, **cfg}
    if context is not None:
        keys["k8s_context"] = context
    return settings(state_dir, **keys)


def inject(s: TargetSettings) -> Path:
    path, _ = journal.new_entry(s, ACTION, {"edge": "kafka"}, UNDO, None, {})
    journal.update(path, status="active")
    return path


def status(path: Path) -> str:
    entry = journal.read(path)
    assert entry is not None
    return str(entry["status"])


def test_a_remove_in_one_namespace_leaves_another_namespaces_faults_open(tmp_path: Path) -> None:
    mine, theirs = inject(k8s(tmp_path, "team-a")), inject(k8s(tmp_path, "team-b"))
    closed = journal.mark_reverted(k8s(tmp_path, "team-a"), UNDO, by="test")
    assert closed == [journal.read(mine)["id"]]  # type: ignore[index]
    assert (status(mine), status(theirs)) == ("reverted", "active")


def test_the_same_namespace_in_another_context_is_another_stack(tmp_path: Path) -> None:
    mine, theirs = inject(k8s(tmp_path, "sql-audit", "staging")), inject(k8s(tmp_path, "sql-audit", "dev"))
    journal.mark_reverted(k8s(tmp_path, "sql-audit", "staging"), UNDO, by="test")
    assert (status(mine), status(theirs)) == ("reverted", "active")


def test_a_kubernetes_fault_is_not_on_the_local_stack(tmp_path: Path) -> None:
    remote, local = inject(k8s(tmp_path, "sql-audit")), inject(settings(tmp_path))
    journal.mark_reverted(settings(tmp_path), UNDO, by="test")
    assert (status(remote), status(local)) == ("active", "reverted")
    assert [e["id"] for _, e in journal.open_entries(tmp_path, port_base=19000)] == []  # --port-base: local only


def test_the_entry_records_the_context_in_use_when_none_is_configured(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({"current-context": "kind-test", "contexts": [], "clusters": [],
                                          "users": []}))
    path = inject(k8s(tmp_path, "sql-audit", None, k8s_kubeconfig=str(kubeconfig)))
    assert journal.read(path)["stack"] == {  # type: ignore[index]
        "target": "kubernetes", "context": "kind-test", "namespace": "sql-audit"}
    kubeconfig.write_text(yaml.safe_dump({"current-context": "kind-other"}))  # the user switched context
    journal.mark_reverted(k8s(tmp_path, "sql-audit", None, k8s_kubeconfig=str(kubeconfig)), UNDO, by="test")
    assert status(path) == "active"  # that remove acted on kind-other, not on the cluster the fault is in
    journal.mark_reverted(k8s(tmp_path, "sql-audit", "kind-test", k8s_kubeconfig=str(kubeconfig)), UNDO, by="test")
    assert status(path) == "reverted"


def test_local_stacks_differ_by_port_base_and_data_dir(tmp_path: Path) -> None:
    a = inject(settings(tmp_path, stack_port_base=19000))
    b = inject(settings(tmp_path, stack_port_base=19040))
    c = inject(settings(tmp_path, stack_port_base=19000, stack_data_dir=str(tmp_path / "elsewhere")))
    assert journal.read(a)["stack"] == {"target": "local", "port_base": 19000, "data_dir": None}  # type: ignore[index]
    journal.mark_reverted(settings(tmp_path, stack_port_base=19000), UNDO, by="test")
    assert [status(p) for p in (a, b, c)] == ["reverted", "active", "active"]


def _legacy(state_dir: Path, name: str, target: str, configuration: dict[str, Any], stack: dict[str, Any]) -> Path:
    """An entry as journals written before the stack identity had a target (no ``stack.target``)."""
    path = state_dir / "old-run" / "faults" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"id": name, "run_id": "old-run", "target": target, "fault": "network_partition",
                                "action": ACTION, "parameters": {"edge": "kafka"}, "undo": UNDO,
                                "configuration": {"target": target, "run_id": "old-run", **configuration},
                                "stack": stack, "created_at": 1.0, "status": "active"}))
    return path


def test_entries_of_older_journals_keep_working(tmp_path: Path) -> None:
    local = _legacy(tmp_path, "old-local", "local", {"stack_port_base": 19000},
                    {"port_base": 19000, "data_dir": None})
    ns_a = _legacy(tmp_path, "old-a", "kubernetes", {"stack_port_base": 19000, "k8s_namespace": "team-a",
                                                     "k8s_context": "staging"}, {"port_base": 19000, "data_dir": None})
    ns_b = _legacy(tmp_path, "old-b", "kubernetes", {"stack_port_base": 19000, "k8s_namespace": "team-b",
                                                     "k8s_context": "staging"}, {"port_base": 19000, "data_dir": None})
    assert journal.entry_stack(journal.read(ns_a) or {}) == {  # derived from the recorded configuration
        "target": "kubernetes", "context": "staging", "namespace": "team-a"}
    assert [e["id"] for _, e in journal.open_entries(tmp_path, port_base=19000)] == ["old-local"]
    journal.mark_reverted(k8s(tmp_path, "team-a"), UNDO, by="test")
    assert [status(p) for p in (local, ns_a, ns_b)] == ["active", "reverted", "active"]
    journal.mark_reverted(settings(tmp_path), UNDO, by="test")
    assert status(local) == "reverted"
