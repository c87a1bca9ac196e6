"""The sweeper of expired faults (``python -m faults.cli sweep``) without a cluster: the expiry rule, the hold's
expiry, what one sweep reverts and keeps, and the command's output and exit codes. The same against a real API
server: tests/k8s/test_apiserver.py (``test_the_sweep_reverts_exactly_the_expired_partitions_and_holds``)."""

from __future__ import annotations

import calendar
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from click.testing import CliRunner

from faults import cli
from faults.kubernetes import sweep as sweep_mod
from faults.kubernetes.expiry import EXPIRES, expired, stamp
from faults.kubernetes.hold import BEFORE, HELD_BY, hold_set
from target.kubernetes import KubeSettings

NOW = 1_800_000_000.0
PAST, FUTURE = stamp(NOW - 60), stamp(NOW + 60)
KEYS = {"k8s_namespace": "sql-audit", "k8s_allowed_contexts": ["in-cluster"], "k8s_allowed_namespaces": ["sql-audit"],
        "k8s_in_cluster": True, "k8s_policy_max_age": 900}


def obj(name: str, annotations: dict[str, str] | None = None, replicas: int | None = None) -> Any:
    return SimpleNamespace(metadata=SimpleNamespace(name=name, annotations=annotations),
                           spec=SimpleNamespace(replicas=replicas))


class FakeKube:
    """What the sweep and the hold ask of :class:`faults.kubernetes.client.Kube`, recorded."""

    def __init__(self, policies: list[Any] | None = None, sets: dict[str, list[Any]] | None = None,
                 fail: set[str] | None = None, **keys: Any) -> None:
        self.settings = KubeSettings.from_configuration({**KEYS, **keys})
        self.dry_run = False
        self.policies, self.sets, self.fail = policies or [], sets or {}, fail or set()
        self.deleted: list[str] = []
        self.patched: list[tuple[str, str, dict[str, Any]]] = []
        self.read: list[tuple[str, str]] = []

    def _maybe_fail(self, what: str) -> None:
        if what in self.fail:
            raise ActivityFailed(f"sweep expired faults: {what}: 500 Internal Server Error")

    def list_policies(self, namespace: str, selector: str | None = None) -> list[Any]:
        self._maybe_fail("list policies")
        return self.policies

    def delete_policy(self, namespace: str, name: str) -> None:
        self._maybe_fail(f"delete {name}")
        self.deleted.append(name)

    def list_statefulsets(self, namespace: str) -> list[Any]:
        self._maybe_fail(f"list statefulsets {namespace}")
        return self.sets.get(namespace, [])

    def read_statefulset(self, namespace: str, name: str, missing_ok: bool = False) -> Any:
        self.read.append((namespace, name))
        return next((s for s in self.sets.get(namespace, []) if s.metadata.name == name), None)

    def patch_statefulset(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        self._maybe_fail(f"patch {name}")
        self.patched.append((namespace, name, body))

    def wait_pods_ready(self, *args: Any) -> list[str]:
        raise AssertionError("the sweep does not wait for pods")


@pytest.mark.parametrize(("annotations", "is_expired"), [
    ({EXPIRES: PAST}, True),
    ({EXPIRES: stamp(NOW)}, True),
    ({EXPIRES: FUTURE}, False),
    ({}, False),
    (None, False),
    ({EXPIRES: ""}, False),
    ({EXPIRES: "tomorrow"}, True),  # the partition's rule, kept: ours and unreadable, so unbounded
])
def test_the_expiry_rule(annotations: dict[str, str] | None, is_expired: bool) -> None:
    assert expired(annotations, NOW) is is_expired


@pytest.mark.parametrize(("duration", "seconds"), [(45.0, 45), (None, 900)])
def test_a_hold_writes_its_expiry_with_the_count_before(duration: float | None, seconds: int) -> None:
    """The fault's duration, else k8s_policy_max_age (900 here): the partition's rule."""
    kube = FakeKube()
    before = time.time()
    assert hold_set(kube, "sql-audit", obj("kafka", {}, 3), 1, "kafka_broker", "test",  # type: ignore[arg-type]
                    duration=duration) == 3
    [(_, name, body)] = kube.patched
    notes = body["metadata"]["annotations"]
    assert (name, body["spec"], notes[BEFORE], notes[HELD_BY]) == ("kafka", {"replicas": 2}, "3", "kafka_broker")
    until = calendar.timegm(time.strptime(notes[EXPIRES], "%Y-%m-%dT%H:%M:%SZ"))
    assert int(before) + seconds - 1 <= until <= int(time.time()) + seconds


def held(name: str, expiry: str | None, before: str = "2", by: str | None = "replicas") -> Any:
    notes = {BEFORE: before, **({HELD_BY: by} if by else {}), **({EXPIRES: expiry} if expiry else {})}
    return obj(name, notes, 0)


def test_one_sweep_reverts_what_expired_and_keeps_the_rest() -> None:
    policies = [obj("chaos-partition-kafka", {EXPIRES: PAST}), obj("chaos-partition-postgres", {EXPIRES: FUTURE}),
                obj("chaos-partition-old", {}), obj("chaos-partition-garbled", {EXPIRES: "soon"})]
    sets = [held("expired", PAST), held("fresh", FUTURE), held("old-hold", None),
            held("scaled-out", PAST, by=None),  # scale_replicas' annotation: not a hold
            obj("untouched", {}, 3), obj("annotations-none", None, 1)]
    kube = FakeKube(policies, {"sql-audit": sets})
    result = sweep_mod.sweep_with(kube, NOW)  # type: ignore[arg-type]
    assert kube.deleted == ["chaos-partition-kafka", "chaos-partition-garbled"]
    assert kube.patched == [("sql-audit", "expired", {"metadata": {"annotations": {
        BEFORE: None, HELD_BY: None, EXPIRES: None}}, "spec": {"replicas": 2}})]
    assert result.ok and result.errors == []
    assert [s.line(False) for s in result.swept] == [
        f"reverted     NetworkPolicy sql-audit/chaos-partition-kafka (expired at {PAST}): deleted",
        "reverted     NetworkPolicy sql-audit/chaos-partition-garbled (expired at soon): deleted",
        f"reverted     StatefulSet sql-audit/expired (expired at {PAST}): replicas 0 -> 2 (held by replicas, "
        f"{BEFORE}=2)"]
    assert kube.read == []  # ClickHouse is in the listed namespace


def test_a_failed_request_is_reported_and_the_sweep_goes_on() -> None:
    policies = [obj("chaos-partition-kafka", {EXPIRES: PAST}), obj("chaos-partition-clickhouse", {EXPIRES: PAST})]
    kube = FakeKube(policies, {"sql-audit": [held("a", PAST), held("b", PAST)]},
                    fail={"delete chaos-partition-kafka", "patch a"})
    result = sweep_mod.sweep_with(kube, NOW)  # type: ignore[arg-type]
    assert kube.deleted == ["chaos-partition-clickhouse"] and [p[1] for p in kube.patched] == ["b"]
    assert not result.ok
    assert [(s.name, bool(s.error)) for s in result.swept] == [("chaos-partition-kafka", True),
                                                               ("chaos-partition-clickhouse", False),
                                                               ("a", True), ("b", False)]
    assert result.swept[0].line(False).startswith("FAILED       NetworkPolicy sql-audit/chaos-partition-kafka")

    listing = FakeKube(policies, {"sql-audit": [held("a", PAST)]}, fail={"list policies"})
    result = sweep_mod.sweep_with(listing, NOW)  # type: ignore[arg-type]
    assert not result.ok and len(result.errors) == 1 and [p[1] for p in listing.patched] == ["a"]


def test_holds_are_looked_for_where_the_restores_look() -> None:
    """Kafka's and PostgreSQL's namespaces listed (their restores list held sets), ClickHouse's set read by name (its
    dependency Role grants get, not list)."""
    sets = {"kafka": [held("kafka", PAST, by="kafka_broker")],
            "clickhouse": [held("chi-audit-main-0-0", PAST, by="clickhouse_down")]}
    kube = FakeKube([], sets, k8s_kafka_namespace="kafka", k8s_postgres_namespace="postgres",
                    k8s_clickhouse_namespace="clickhouse", k8s_clickhouse_statefulset="chi-audit-main-0-0",
                    k8s_allowed_namespaces=["sql-audit", "kafka", "postgres", "clickhouse"])
    assert sweep_mod.hold_namespaces(kube) == (  # type: ignore[arg-type]
        ["kafka", "postgres", "sql-audit"], ("clickhouse", "chi-audit-main-0-0"))
    sweep_mod.sweep_with(kube, NOW)  # type: ignore[arg-type]
    assert kube.read == [("clickhouse", "chi-audit-main-0-0")]
    assert [(ns, name) for ns, name, _ in kube.patched] == [("kafka", "kafka"), ("clickhouse", "chi-audit-main-0-0")]


# ----------------------------------------------------------------------------- the command
@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump({"target": "kubernetes", **KEYS}))
    return path


def swept(error: str | None = None) -> sweep_mod.Sweep:
    return sweep_mod.Sweep([sweep_mod.Swept("NetworkPolicy", "sql-audit", "chaos-partition-kafka", PAST, "deleted",
                                            error)], [])


def test_a_single_sweep_prints_what_it_reverted_and_exits_0(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []

    def fake(configuration: Any = None, environ: Any = None, now: Any = None) -> sweep_mod.Sweep:
        calls.append((configuration, environ["RESILIENCE_TARGET_CONFIG"]))
        return swept()

    monkeypatch.setattr(sweep_mod, "sweep", fake)
    out = CliRunner().invoke(cli.main, ["sweep", "--target-config", str(target)])
    assert out.exit_code == 0, out.output
    assert out.output == f"reverted     NetworkPolicy sql-audit/chaos-partition-kafka (expired at {PAST}): deleted\n"
    out = CliRunner().invoke(cli.main, ["sweep", "--dry-run"], env={"RESILIENCE_TARGET_CONFIG": str(target)})
    assert out.exit_code == 0 and out.output.startswith("would revert NetworkPolicy"), out.output
    assert calls == [(None, str(target)), ({"dry_run": True}, str(target))]


def test_a_single_sweep_that_failed_exits_1(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_mod, "sweep", lambda *a, **k: swept("500"))
    out = CliRunner().invoke(cli.main, ["sweep", "--target-config", str(target)])
    assert out.exit_code == 1 and out.output.startswith("FAILED"), out.output

    def unreachable(*a: Any, **k: Any) -> sweep_mod.Sweep:
        raise ActivityFailed("sweep expired faults: connection refused")

    monkeypatch.setattr(sweep_mod, "sweep", unreachable)
    assert CliRunner().invoke(cli.main, ["sweep", "--target-config", str(target)]).exit_code == 1
    monkeypatch.setattr(sweep_mod, "sweep", lambda *a, **k: sweep_mod.Sweep([], []))
    out = CliRunner().invoke(cli.main, ["sweep", "--target-config", str(target)])
    assert (out.exit_code, out.output) == (0, "nothing expired\n")


def test_the_loop_goes_on_after_a_failed_sweep(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results: list[Any] = [ActivityFailed("sweep expired faults: 503"), swept("500"), swept()]
    slept: list[float] = []

    def fake(*a: Any, **k: Any) -> sweep_mod.Sweep:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    class Stop(Exception):
        pass

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if not results:
            raise Stop

    monkeypatch.setattr(sweep_mod, "sweep", fake)
    monkeypatch.setattr(cli.time, "sleep", sleep)
    out = CliRunner().invoke(cli.main, ["sweep", "--every", "30", "--target-config", str(target)])
    assert isinstance(out.exception, Stop), out.output
    assert len(slept) == 3 and all(0 < s <= 30 for s in slept)
    assert [line.split()[0] for line in out.output.splitlines()] == ["FAILED", "reverted"]


def test_a_target_file_the_sweep_cannot_use_is_a_bad_invocation(tmp_path: Path) -> None:
    local = tmp_path / "local.yaml"
    local.write_text("target: local\n")
    out = CliRunner().invoke(cli.main, ["sweep", "--target-config", str(local)])
    assert out.exit_code == 2 and "the sweep is for target kubernetes" in out.output
    empty = tmp_path / "no-namespace.yaml"
    empty.write_text("target: kubernetes\n")
    out = CliRunner().invoke(cli.main, ["sweep", "--target-config", str(empty)])
    assert out.exit_code == 2 and "k8s_namespace is required" in out.output
    out = CliRunner().invoke(cli.main, ["sweep"], env={"RESILIENCE_TARGET_CONFIG": ""})
    assert out.exit_code == 2 and "--target-config" in out.output
