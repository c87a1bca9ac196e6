"""The residue diff's rules, item by item, on snapshots written out by hand (no stack needed).

Each rule must name a leftover (so the ``residue`` verdict fails) and must let pass what a run may
legitimately change (a restarted replica, a moved leader). The live half — that the readers see
what the faults really do — is tests/faults/test_residue_live.py.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from faults import residue
from sqlaudit.config import DEFAULT_CHECKERS_FILE

SHIPPED = hashlib.sha256(DEFAULT_CHECKERS_FILE.read_bytes()).hexdigest()
"""What `resilience up` copies into the stack: the checker file of a stack at rest."""

PROXY = {"enabled": True, "toxics": []}
TOXIC = {"name": "chaos-partition-upstream", "type": "timeout", "stream": "upstream", "toxicity": 1.0,
         "attributes": {"timeout": 0}}


def local(**items: Any) -> dict[str, Any]:
    """A local snapshot at rest, with ``items`` replaced."""
    base: dict[str, Any] = {
        "toxiproxy": {"kafka": dict(PROXY), "clickhouse": dict(PROXY)},
        "programs": {"programs": {"clickhouse": {"state": "RUNNING", "pid": 10, "started": 1.0, "frozen": []},
                                  "audit-service-0": {"state": "RUNNING", "pid": 20, "started": 2.0, "frozen": []}},
                     "strays": {}},
        "health": {"clickhouse": {"healthy": True, "detail": "ok"}},
        "patroni": None,
        "kafka": {"topic": "t", "brokers": [1, 2, 3],
                  "partitions": {"0": {"leader": 1, "replicas": [1, 2, 3], "isr": [1, 2, 3]}}},
        "checker_config": {"file": "/x/conf/checkers.yaml", "sha256": SHIPPED, "pending": []},
        "cgroups": {"paths": []},
        "journal": {},
        "processes": {"helpers": {}, "load": {}},
    }
    base.update(items)
    return {"format": 1, "target": "local", "stack": {"target": "local", "port_base": 19000, "data_dir": None},
            "instance": "supervisord pid 1 started 0.00", "taken_at": 0.0, "items": base}


def changed(snap: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(snap)
    node = out["items"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def texts(findings: list[residue.Finding]) -> str:
    return " | ".join(map(str, findings))


def test_identical_snapshots_leave_nothing() -> None:
    audit = residue.diff(local(), local())
    assert audit.clean and not audit.notes


@pytest.mark.parametrize(("path", "value", "named"), [
    (["toxiproxy", "clickhouse", "toxics"], [TOXIC], "toxiproxy proxy clickhouse: toxic chaos-partition-upstream"),
    (["toxiproxy", "kafka", "enabled"], False, "toxiproxy proxy kafka: DISABLED"),
    (["programs", "programs", "clickhouse", "state"], "STOPPED", "program clickhouse: STOPPED (was RUNNING"),
    (["programs", "programs", "clickhouse", "frozen"], [10], "program clickhouse: pid(s) [10] frozen"),
    (["programs", "strays"], {"77": {"pid": 77, "started": 5.0, "cmd": "postgres: backend", "cwd": "/x"}},
     "process pid 77: left in the stack's directory"),
    (["health", "clickhouse"], {"healthy": False, "detail": "timed out"},
     "component clickhouse: unhealthy (timed out)"),
    (["kafka", "brokers"], [1, 2], "Kafka brokers: [3] not registered"),
    (["kafka", "partitions", "0", "isr"], [1, 2], "Kafka partition t-0: ISR [1, 2] lacks [3]"),
    (["kafka", "partitions", "0", "leader"], -1, "Kafka partition t-0: offline"),
    (["checker_config", "sha256"], "bbb", "checker config /x/conf/checkers.yaml: content changed"),
    (["checker_config", "pending"], [".before-chaos"], "checkers.yaml.before-chaos left"),
    (["cgroups", "paths"], ["/sys/fs/cgroup/memory/sqlaudit-19000-oom-audit-service-audit-service-0"],
     "memory cgroup /sys/fs/cgroup/memory/sqlaudit-19000-oom-audit-service-audit-service-0: left by the OOM fault"),
    (["journal"], {"e1": {"fault": "network_partition", "run_id": "r", "status": "active"}},
     "fault network_partition (e1): still active"),
    (["processes", "load"], {"5": {"pid": 5, "started": 9.0, "cmd": "locust -f x", "run_id": None, "orphaned": True}},
     "load generator pid 5: still running"),
    (["processes", "helpers"], {"6": {"pid": 6, "started": 9.0, "cmd": "python -m faults.cli watchdog --run r",
                                      "run_id": "r", "orphaned": False}}, "fault helper pid 6 of run r: still running"),
])
def test_each_leftover_is_named(path: list[str], value: Any, named: str) -> None:
    audit = residue.diff(local(), changed(local(), path, value))
    assert not audit.clean
    assert named in texts(audit.leftovers)


def test_a_restarted_program_is_a_note_not_residue() -> None:
    after = changed(local(), ["programs", "programs", "audit-service-0", "pid"], 21)
    after = changed(after, ["programs", "programs", "audit-service-0", "started"], 3.0)
    audit = residue.diff(local(), after)
    assert audit.clean
    assert "program audit-service-0: restarted during the run: pid 20 -> 21" in texts(audit.notes)


def test_a_moved_kafka_leader_is_a_note_but_a_shrunk_isr_is_not() -> None:
    moved = changed(local(), ["kafka", "partitions", "0", "leader"], 2)
    assert residue.diff(local(), moved).clean
    shrunk = changed(moved, ["kafka", "partitions", "0", "isr"], [2, 3])
    assert "lacks [1]" in texts(residue.diff(local(), shrunk).leftovers)


def _patroni(leader: str | None, sync: bool, replica_state: str = "streaming") -> dict[str, Any]:
    members = {"pg1": {"role": "leader" if leader == "pg1" else "replica", "state": "running" if leader == "pg1"
                       else replica_state},
               "pg2": {"role": "leader" if leader == "pg2" else "replica", "state": "running" if leader == "pg2"
                       else replica_state}}
    return {"leader": leader, "synchronous_mode": sync, "members": members}


def test_patroni_failover_is_a_note_but_sync_mode_and_a_lost_member_are_residue() -> None:
    before = local(patroni=_patroni("pg1", True))
    audit = residue.diff(before, local(patroni=_patroni("pg2", True)))
    assert audit.clean and "Patroni leader: pg1 -> pg2" in texts(audit.notes)
    assert "synchronous_mode: False (was True" in texts(residue.diff(before, local(patroni=_patroni("pg1", False)))
                                                            .leftovers)
    assert "Patroni member pg2: stopped" in texts(residue.diff(before, local(patroni=_patroni("pg1", True, "stopped")))
                                                   .leftovers)
    assert "Patroni leader: none running" in texts(residue.diff(before, local(patroni=_patroni(None, True)))
                                                   .leftovers)


def test_what_cannot_be_read_now_is_a_leftover_what_could_not_be_read_before_a_note() -> None:
    down = changed(local(), ["toxiproxy"], {"error": "ConnectionError: refused"})
    assert "toxiproxy: cannot be read now (ConnectionError: refused)" in texts(residue.diff(local(), down).leftovers)
    audit = residue.diff(down, local())
    assert audit.clean and "not read before the run" in texts(audit.notes)


def test_snapshots_of_two_stacks_are_never_compared() -> None:
    other = local()
    other["stack"] = {"target": "local", "port_base": 19060, "data_dir": None}
    assert "snapshots of different stacks" in texts(residue.diff(local(), other).leftovers)
    spelled = local()
    spelled["stack"] = {"target": "local", "port_base": 19000, "data_dir": "/var/tmp/x/stack-19000"}
    assert residue.diff(local(), spelled).clean  # the default data dir spelled out is the same stack


def test_at_rest_is_the_snapshot_without_anything_of_the_library() -> None:
    dirty = local(toxiproxy={"kafka": {"enabled": False, "toxics": [TOXIC, {**TOXIC, "name": "mine"}]}},
                  cgroups={"paths": ["/sys/fs/cgroup/memory/sqlaudit-19000-oom-x"]},
                  journal={"e1": {"fault": "network_partition", "run_id": "r", "status": "active"}},
                  processes={"helpers": {}, "load": {
                      "5": {"pid": 5, "started": 1.0, "cmd": "locust", "run_id": None, "orphaned": True},
                      "6": {"pid": 6, "started": 1.0, "cmd": "locust", "run_id": None, "orphaned": False}}})
    found = texts(residue.diff(residue.at_rest(dirty), dirty, "at rest").leftovers)
    assert "DISABLED" in found and "chaos-partition-upstream" in found and "sqlaudit-19000-oom-x" in found
    assert "fault network_partition (e1)" in found and "load generator pid 5" in found
    assert "toxic mine" not in found, "a toxic someone else named is not this library's"
    assert "load generator pid 6" not in found, "the load of a live run is not a leftover"
    library = texts(residue.library_leftovers(dirty))
    assert "chaos-partition-upstream" in library and "fault network_partition" in library
    assert residue.library_leftovers(local()) == []


def kube(**items: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "network_policies": {}, "network_chaos": None,
        "statefulsets": {"sql-audit/clickhouse": {"replicas": 1, "annotations": {}, "restarted_at": None}},
        "configmap": {"name": "sql-audit/checkers", "key": "checkers.yaml", "sha256": "aaa", "annotations": {}},
        "pods": {"audit-service": {"namespace": "sql-audit", "selector": "app=s", "ready": ["s-0", "s-1", "s-2"],
                                   "not_ready": []}},
        "journal": {}, "processes": {"helpers": {}, "load": {}},
    }
    base.update(items)
    return {"format": 1, "target": "kubernetes", "stack": {"target": "kubernetes", "context": "c",
                                                           "namespace": "sql-audit"},
            "instance": "https://x namespace sql-audit", "taken_at": 0.0, "items": base}


@pytest.mark.parametrize(("path", "value", "named"), [
    (["network_policies"], {"chaos-partition-kafka": {"labels": {"a": "b"}, "annotations": {}}},
     "NetworkPolicy chaos-partition-kafka: left"),
    (["statefulsets", "sql-audit/clickhouse", "replicas"], 0, "StatefulSet sql-audit/clickhouse: spec.replicas 0"),
    (["statefulsets", "sql-audit/clickhouse", "annotations"], {"sql-audit-resilience/replicas-before": "1"},
     "annotation sql-audit-resilience/replicas-before left"),
    (["configmap", "sha256"], "bbb", "ConfigMap sql-audit/checkers: key checkers.yaml changed"),
    (["configmap", "annotations"], {"sql-audit-resilience/checkers-before": "{}"},
     "annotation sql-audit-resilience/checkers-before left"),
    (["pods", "audit-service", "ready"], ["s-0", "s-1"], "2 Ready (were 3"),
])
def test_kubernetes_leftovers_are_named(path: list[str], value: Any, named: str) -> None:
    before = kube()
    audit = residue.diff(before, changed(before, path, value))
    assert named in texts(audit.leftovers)


def test_kubernetes_roll_is_a_note_and_at_rest_restores_the_recorded_replicas() -> None:
    rolled = changed(kube(), ["statefulsets", "sql-audit/clickhouse", "restarted_at"], "2026-12-01T00:00:00Z")
    audit = residue.diff(kube(), rolled)
    assert audit.clean and "rolled during the run" in texts(audit.notes)
    scaled = changed(kube(), ["statefulsets", "sql-audit/clickhouse"],
                     {"replicas": 0, "annotations": {"sql-audit-resilience/replicas-before": "1"},
                      "restarted_at": None})
    found = texts(residue.library_leftovers(scaled))
    assert "spec.replicas 0 (was 1 at rest)" in found and "replicas-before left" in found


def test_a_process_forked_by_a_supervised_one_after_the_listing_is_not_a_stray(tmp_path: Any) -> None:
    """PostgreSQL forks a backend for each connection: one forked between the listing of the programs' families and
    the scan of the stack's directory was named "left in the stack's directory" by a CI run's cleanup. A process
    whose ancestor is supervised is the program's; one with none is a stray."""
    import os
    import subprocess
    import sys

    from faults.local.residue import _strays

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], cwd=tmp_path)
    try:
        assert _strays(tmp_path, known={os.getpid()}) == {}  # this process (a "program") forked it
        assert list(_strays(tmp_path, known=set())) == [str(child.pid)]  # nobody's: a stray
    finally:
        child.kill()
        child.wait()
