"""The scale action (``faults.replica_count``) without a stack: its argument checks, its journal entries, the
pieces of the local scale that need no process (the exporter's replica set, the residue rule), and the guard
that a scale is undone by the run's own cleanup."""

from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from prometheus_client.registry import CollectorRegistry

from faults import engine, journal, replica_count
from faults.cleanup import cleanup
from faults.local import residue as local_residue
from stack.errors import StackError
from stack.pod_state_exporter import ReadinessCollector
from stack.replicas_file import read_replicas_file, write_replicas_file


@pytest.fixture
def configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for var in ("RESILIENCE_TARGET_CONFIG", "RESILIENCE_STATE_DIR", "RESILIENCE_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    return {"fault_state_dir": str(tmp_path / "journal"), "run_id": "scale-test", "watchdog": False,
            "stack_port_base": 26900, "stack_data_dir": str(tmp_path / "no-stack")}


@pytest.mark.parametrize(("to", "problem"), [
    (2, "expected an integer in 3..10 (the guide's HorizontalPodAutoscaler: min 3, max 10 replicas)"),
    (11, "expected an integer in 3..10"),
    ("6", "expected an integer in 3..10"),
    (5.5, "expected an integer in 3..10"),
    (True, "expected an integer in 3..10"),
    (None, "expected an integer in 3..10"),
])
def test_a_bad_count_is_refused_naming_the_field_before_anything(monkeypatch: pytest.MonkeyPatch,
                                                                 configuration: dict[str, Any], to: Any,
                                                                 problem: str) -> None:
    monkeypatch.setattr(engine, "inject", lambda *a, **k: pytest.fail("a bad argument reached the engine"))
    with pytest.raises(ActivityFailed) as err:
        replica_count.scale_replicas(to, configuration=configuration)
    assert str(err.value).startswith(f"scale_replicas: to={to!r}: ")
    assert problem in str(err.value)
    assert not Path(configuration["fault_state_dir"]).exists()


def test_a_bad_duration_is_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch,
                                                    configuration: dict[str, Any]) -> None:
    monkeypatch.setattr(engine, "inject", lambda *a, **k: pytest.fail("a bad argument reached the engine"))
    with pytest.raises(ActivityFailed, match=r"scale_replicas: duration=-5: expected a number of seconds > 0"):
        replica_count.scale_replicas(6, duration=-5, configuration=configuration)


def test_a_whole_float_is_taken_as_the_integer(monkeypatch: pytest.MonkeyPatch, configuration: dict[str, Any]) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(engine, "inject", lambda module, function, arguments, *a, **k: seen.append(arguments) or {})
    replica_count.scale_replicas(6.0, configuration=configuration)  # type: ignore[arg-type]
    assert seen == [{"to": 6, "duration": None}]


def _stand_in(monkeypatch: pytest.MonkeyPatch, calls: list[tuple[str, dict[str, Any]]]) -> None:
    """A backend that records what it is asked (dry runs apart) instead of touching a stack."""
    def impl_for(settings: Any, module: str, function: str) -> Any:
        def backend(**arguments: Any) -> dict[str, Any]:
            if arguments["configuration"].get("dry_run"):
                return {"would": f"{function} (dry run)"}
            calls.append((function, {k: v for k, v in arguments.items() if k not in ("configuration", "secrets")}))
            return {"changed": function}
        return backend

    monkeypatch.setattr(engine, "_impl", impl_for)
    monkeypatch.setattr(journal, "start_heartbeat", lambda _settings: None)


def test_the_scale_is_journaled_before_it_is_applied_and_its_undo_restores_the_count(
        monkeypatch: pytest.MonkeyPatch, configuration: dict[str, Any]) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    _stand_in(monkeypatch, calls)
    result = replica_count.scale_replicas(6, configuration=configuration)
    state = Path(configuration["fault_state_dir"])
    [(_, entry)] = journal.entries(state, "scale-test")
    assert entry["id"] == result["fault_id"]
    assert entry["action"] == "faults.replica_count.scale_replicas"
    assert entry["parameters"] == {"to": 6, "duration": None}
    assert entry["undo"] == {"activity": "faults.replica_count.restore_replica_count", "arguments": {}}
    assert entry["status"] == "active" and entry["instant"] is False and entry["expires_at"] is None
    assert entry["stack"]["port_base"] == 26900
    window = journal.fault_window(state, "scale-test")
    assert window is not None and window.end is None  # open until scaled back
    removed = replica_count.restore_replica_count(configuration=configuration)
    assert removed["reverted_entries"] == [entry["id"]]
    assert not journal.open_entries(state, "scale-test")
    assert calls == [("scale_replicas", {"to": 6, "duration": None}), ("restore_replica_count", {})]


def test_a_scale_left_open_by_the_run_is_undone_by_its_cleanup(monkeypatch: pytest.MonkeyPatch,
                                                               configuration: dict[str, Any]) -> None:
    """What a killed runner or a removed rollback leaves: cleanup (and so the watchdog) calls the journaled undo."""
    calls: list[tuple[str, dict[str, Any]]] = []
    _stand_in(monkeypatch, calls)
    replica_count.scale_replicas(5, configuration=configuration)
    state = Path(configuration["fault_state_dir"])
    cleanup(state, "scale-test")
    assert calls[-1] == ("restore_replica_count", {})
    assert not journal.open_entries(state, "scale-test")


def test_the_stack_scale_refuses_a_count_out_of_the_port_plan_before_anything(tmp_path: Path) -> None:
    from stack.core import LocalStack
    from stack.scale import scale

    stack = LocalStack(port_base=26900, data_dir=tmp_path / "stack")
    for bad in (0, 11, "3", True):
        with pytest.raises(StackError, match=r"replicas must be an integer in 1\.\.10"):
            scale(stack, bad)  # type: ignore[arg-type]
    with pytest.raises(StackError, match="no stack is running"):
        scale(stack, 4)


def test_scale_back_of_a_stopped_stack_sets_its_state_back(tmp_path: Path) -> None:
    """A stack that went down while scaled: the restore leaves nothing to stop, and the next ``up`` starts the
    original count."""
    import json

    from stack.core import LocalStack
    from stack.scale import scale_back, scaled_from

    data = tmp_path / "stack"
    data.mkdir()
    (data / "stack.json").write_text(json.dumps({"port_base": 26900, "profile": "minimal", "replicas": 6,
                                                 "scaled_from": 3}))
    stack = LocalStack(port_base=26900, data_dir=data)
    assert scaled_from(stack) == 3 and stack.ctx.replicas == 6
    result = scale_back(stack)
    assert result is not None and (result.before, result.after) == (6, 3)
    state = json.loads((data / "stack.json").read_text())
    assert state["replicas"] == 3 and "scaled_from" not in state
    assert scale_back(stack) is None


def test_the_exporter_follows_its_replicas_file() -> None:
    registry = CollectorRegistry()
    collector = ReadinessCollector("local", "audit-service", ["audit-service-0", "audit-service-1"], 2)
    registry.register(collector)
    collector.observe("audit-service-0", True)
    collector.set_pods(["audit-service-0", "audit-service-1", "audit-service-2"])
    assert registry.get_sample_value("kube_statefulset_replicas", {"namespace": "local",
                                                                   "statefulset": "audit-service"}) == 3
    assert registry.get_sample_value("kube_pod_status_ready", {"namespace": "local", "pod": "audit-service-2",
                                                               "condition": "unknown"}) == 1
    assert registry.get_sample_value("kube_pod_status_ready", {"namespace": "local", "pod": "audit-service-0",
                                                               "condition": "true"}) == 1
    collector.set_pods(["audit-service-0"])
    collector.observe("audit-service-2", True)  # a probe in flight when it was removed
    assert registry.get_sample_value("kube_pod_status_ready", {"namespace": "local", "pod": "audit-service-2",
                                                               "condition": "true"}) is None
    assert registry.get_sample_value("kube_statefulset_status_replicas_ready",
                                     {"namespace": "local", "statefulset": "audit-service"}) == 1


def test_the_replicas_file_round_trips_and_a_bad_one_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "pod-state-replicas.json"
    assert read_replicas_file(path) is None
    write_replicas_file(path, {"audit-service-0": "http://127.0.0.1:1/ready"})
    assert read_replicas_file(path) == {"audit-service-0": "http://127.0.0.1:1/ready"}
    for bad in ("[1, 2]", "{not json", '{"audit-service-0": 3}'):
        path.write_text(bad)
        assert read_replicas_file(path) is None


def _replicas_item(count: int, scaled_from: int | None = None, targets: int | None = None) -> dict[str, Any]:
    names = [f"audit-service-{i}" for i in range(count)]
    shown = [f"audit-service-{i}" for i in range(count if targets is None else targets)]
    return {"replicas": count, "scaled_from": scaled_from, "scrape_targets": shown, "exporter_pods": names,
            "exporter_replicas": count}


def test_the_residue_rule_names_a_scale_not_undone() -> None:
    before = _replicas_item(3)
    assert local_residue.replicas_rule(before, _replicas_item(3), "before the run") == []
    left = local_residue.replicas_rule(before, _replicas_item(6, scaled_from=3), "before the run")
    what = [str(f) for f in left]
    assert all(f.leftover for f in left)
    assert "audit-service replicas: scaled from 3 and not scaled back (stack.json)" in what
    assert any(w.startswith("audit-service Prometheus scrape targets: ['audit-service-0'") and "audit-service-5" in w
               for w in what)
    half = local_residue.replicas_rule(before, _replicas_item(3, targets=5), "before the run")
    assert [f.subject for f in half] == ["audit-service Prometheus scrape targets"]


def test_at_rest_a_scaled_stack_is_its_original_count() -> None:
    rest = local_residue.AT_REST["replicas"](_replicas_item(6, scaled_from=3))
    assert rest == _replicas_item(3)
    assert local_residue.replicas_rule(rest, _replicas_item(6, scaled_from=3), "at rest")


def test_every_experiment_that_scales_scales_back_in_its_rollbacks() -> None:
    """The experiment's own rollback undoes the scale (the runner's cleanup is the second line, not the first)."""
    import yaml

    scaling = []
    for path in sorted((Path(__file__).resolve().parents[2] / "experiments").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        calls = [(a["provider"].get("module"), a["provider"].get("func")) for a in doc.get("method") or []
                 if a.get("type") == "action"]
        if ("faults.replica_count", "scale_replicas") not in calls:
            continue
        scaling.append(path.name)
        undo = [(a["provider"].get("module"), a["provider"].get("func")) for a in doc.get("rollbacks") or []]
        assert ("faults.replica_count", "restore_replica_count") in undo, f"{path.name}: no scale-back rollback"
    assert scaling == ["consumer_lag_surge_scale_out.yaml"]
