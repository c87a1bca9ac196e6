"""Before any fault, the run waits until the service's consumer group holds every partition of the topic.

Replicas are ready without partitions (docs/metrics.md), so "every replica ready" does not mean "the group
consumes": a run started right after ``up`` or after another run's restarts could take its baseline during
the rebalance. ``wait_assigned`` asks Kafka (DescribeGroups). The live tests read the session stack's real
group, and show the wait can fail: a group nobody consumes for is refused, naming what Kafka reported.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from clients.kafka import KafkaAuth
from clients.kafka_lag import GroupAssignment, LagReader, _assigned
from resilience.plan import RunError, wait_assigned
from stack.core import LocalStack
from target.settings import resolve

TOPIC = "sql-audit-events"


def _group(state: str, held: dict[int, str], partitions: int = 6) -> GroupAssignment:
    return GroupAssignment(group="g", topic=TOPIC, state=state, partitions=tuple(range(partitions)), held=held)


def test_complete_only_when_stable_and_every_partition_held() -> None:
    every = {p: "r0@127.0.0.1" for p in range(6)}
    assert _group("Stable", every).complete
    assert not _group("Stable", {p: "r0" for p in range(5)}).complete  # one partition nobody holds
    assert not _group("PreparingRebalance", every).complete
    assert not _group("CompletingRebalance", {}).complete
    assert "3 of 6 partitions" in _group("Stable", {0: "a", 1: "a", 2: "b"}).describe()
    assert "unheld [3, 4, 5]" in _group("Stable", {0: "a", 1: "a", 2: "b"}).describe()


def test_the_decoded_assignment_is_read_per_topic() -> None:
    member = {"member_assignment": {"assigned_partitions": [{"topic": TOPIC, "partitions": [0, 3]},
                                                            {"topic": "other", "partitions": [1]}]}}
    assert _assigned(member, TOPIC) == [0, 3]
    assert _assigned({"member_assignment": b""}, TOPIC) == []


def _plan(stack: LocalStack, group: str) -> SimpleNamespace:
    settings = resolve({"target": "local", "stack_port_base": stack.endpoints.port_base})
    return SimpleNamespace(kafka_bootstrap=stack.endpoints.kafka_bootstrap,
                           settings=SimpleNamespace(consumer_group=group, topic=settings.topic,
                                                    kafka_auth=lambda: KafkaAuth()))


@pytest.mark.stack
def test_the_stack_group_holds_every_partition(stack: LocalStack) -> None:
    settings = resolve({"target": "local", "stack_port_base": stack.endpoints.port_base})
    p = _plan(stack, settings.consumer_group)
    wait_assigned(p, lambda *_: None, timeout_s=60)  # type: ignore[arg-type]
    with LagReader(stack.endpoints.kafka_bootstrap, settings.consumer_group, settings.topic) as reader:
        got = reader.assignment()
    assert got.complete, got.describe()
    assert len(set(got.held.values())) == 3, got.describe()  # the three replicas share the topic


@pytest.mark.stack
def test_a_group_that_holds_nothing_stops_the_run_before_any_fault(stack: LocalStack) -> None:
    phases: list[str] = []
    with pytest.raises(RunError) as err:
        wait_assigned(_plan(stack, "nobody-consumes-this"), lambda _n, d: phases.append(d),  # type: ignore[arg-type]
                      timeout_s=3)
    message = str(err.value)
    assert stack.endpoints.kafka_bootstrap in message and "'nobody-consumes-this'" in message, message
    assert "0 of" in message and "partitions" in message, message
    assert phases, "no progress while waiting"
