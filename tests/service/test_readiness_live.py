"""Readiness of real replicas while they hold no partition (rebalances, more members than partitions).

A replica that is alive and can write to its stores is available, whether or not the group has
given it partitions at the moment (docs/metrics.md, "Readiness and partition assignment"). The
test makes the replicas hold no partition for several seconds, deterministically: six consumers of
its own join the service's group with client ids that sort first, so the range assignor gives
each of them one of the six partitions and the three replicas none.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from kafka import KafkaConsumer
from service_harness import Harness, make_event, wait_until

from stack.endpoints import CONSUMER_GROUP

pytestmark = [pytest.mark.stack]

SAMPLE_S = 0.05


class GroupMember(threading.Thread):
    """A plain consumer in the service's group that polls (never commits) until stopped."""

    def __init__(self, bootstrap: str, topic: str, index: int) -> None:
        super().__init__(name=f"group-member-{index}", daemon=True)
        # Member ids are "<client id>-<uuid>"; "aaa-" sorts before the replicas' "sqlaudit-".
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=CONSUMER_GROUP,
                                      client_id=f"aaa-readiness-test-{index}", enable_auto_commit=False,
                                      auto_offset_reset="earliest", session_timeout_ms=10000)
        self.consumer.subscribe([topic])
        self.assigned: set[int] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                self.consumer.poll(timeout_ms=100)
                self.assigned = {tp.partition for tp in self.consumer.assignment()}
        finally:
            self.consumer.close(autocommit=False)  # leaves the group: the replicas get their partitions back

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


class ReadinessSampler(threading.Thread):
    """Reads every replica's readiness every 50 ms; keeps (replica, HTTP status, partitions)."""

    def __init__(self, service: Harness) -> None:
        super().__init__(name="readiness-sampler", daemon=True)
        self.service = service
        self.samples: list[tuple[str, int, tuple[int, ...]]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for name in self.service.replicas:
                code, body = self.service.readiness(name)
                self.samples.append((name, code, tuple(body.get("details", {}).get("partitions", ()))))
            time.sleep(SAMPLE_S)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def _partitions(service: Harness) -> dict[str, list[int]]:
    return {n: service.readiness(n)[1].get("details", {}).get("partitions") for n in service.replicas}


def test_replicas_without_partitions_stay_ready_and_take_them_back(service: Harness) -> None:
    service.wait_no_lag()
    not_ready_before = {n: service.metric_sum("sqlaudit_not_ready_seconds_total", {"replica": n})
                        for n in service.replicas}
    rebalances_before = service.metric_sum("sqlaudit_rebalances_total", {"event": "assigned"})
    sampler = ReadinessSampler(service)
    sampler.start()
    members = [GroupMember(service.stack.endpoints.kafka_bootstrap, service.stack.ctx.topic, i) for i in range(6)]
    app = f"readiness-{uuid.uuid4().hex[:8]}"
    events = [make_event(app, sql=f"SELECT {i}") for i in range(60)]
    try:
        for m in members:
            m.start()
        wait_until("every partition held by a test member and none by a replica",
                   lambda: sum(len(m.assigned) for m in members) == 6
                   and all(p == [] for p in _partitions(service).values()),
                   60, seen=lambda: {"members": [sorted(m.assigned) for m in members],
                                     "replicas": _partitions(service)})
        time.sleep(3.0)  # hold the state: every sample in it must still say ready
        service.send_all(events)  # read by the test members, never committed: the replicas must store them
    finally:
        for m in members:
            m.stop()
    wait_until("every replica holding partitions again",
               lambda: all(_partitions(service).values()), 60, seen=lambda: _partitions(service))
    sampler.stop()

    empty = [(n, code) for n, code, parts in sampler.samples if not parts]
    assert len({n for n, _ in empty}) == len(service.replicas), "some replica was never seen without partitions"
    assert len(empty) >= 3 * len(service.replicas), f"too few samples without partitions: {len(empty)}"
    unready = [(n, code, parts) for n, code, parts in sampler.samples if code != 200]
    assert not unready, f"a replica answered not ready while alive: {unready[:10]} ({len(unready)} samples)"
    assert service.metric_sum("sqlaudit_rebalances_total", {"event": "assigned"}) > rebalances_before
    # The time counter is exact, whatever the sampling above caught.
    for n in service.replicas:
        after = service.metric_sum("sqlaudit_not_ready_seconds_total", {"replica": n})
        assert after == not_ready_before[n], f"{n}: not ready for {after - not_ready_before[n]:.3f} s"
    service.wait_stored(app, len(events), timeout=60)
    service.wait_no_lag()
