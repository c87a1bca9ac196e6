"""Replicas die and leave: SIGKILL mid-stream loses no acknowledged event (the survivor takes the
partitions once the dead member's session expires: spring-kafka keeps Kafka's 45 s default); SIGTERM
finishes the batch, commits and leaves the group at once."""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any

import pytest
from kafka import KafkaAdminClient

from tests.spring.spring_harness import Replica, SpringService, make_event, wait_until

pytestmark = [pytest.mark.stack, pytest.mark.spring, pytest.mark.extended]

RATE = 150  # events/s produced while a replica dies


def _assigned(replica: Replica) -> list[set[int]]:
    """The partitions of each "partitions [...] assigned" line of the replica's log, in order."""
    return [{int(p) for p in m.group(1).split(",") if p.strip()}
            for m in re.finditer(r"partitions \[([0-9, ]*)\] assigned", replica.log.read_text(errors="replace"))]


def _members(admin: KafkaAdminClient, group: str) -> list[str]:
    info = admin.describe_groups([group])[group]
    return sorted(str(m["client_id"]) for m in info.get("members") or [])


class Stream:
    """Produces events at RATE/s in a thread and keeps the ids Kafka acknowledged (the ground truth)."""

    def __init__(self, spring: SpringService, app: str) -> None:
        self.spring = spring
        self.app = app
        self.acked: set[uuid.UUID] = set()
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)

    def _ack(self, event_id: uuid.UUID) -> Any:
        def ok(_: object) -> None:
            with self._lock:
                self.acked.add(event_id)
        return ok

    def _nack(self, _: object) -> None:
        with self._lock:
            self.failed += 1

    def _run(self) -> None:
        i = 0
        t0 = time.monotonic()
        while not self._stop.is_set():
            # Several apps: the keys spread over every partition, so each replica owns some of the stream.
            e = make_event(f"{self.app}-{i % 12}", duration_ms=1500 if i % 10 == 0 else 2)
            self.spring.send(e).add_callback(self._ack(e.event_id)).add_errback(self._nack)
            i += 1
            ahead = t0 + i / RATE - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.spring.producer.flush(timeout=60)

    def apps(self) -> list[str]:
        return [f"{self.app}-{i}" for i in range(12)]


def _stored(spring: SpringService, stream: Stream) -> set[uuid.UUID]:
    return set().union(*(spring.stored_ids(a) for a in stream.apps()))


def _wait_all_stored(spring: SpringService, stream: Stream) -> None:
    wait_until(f"all {len(stream.acked)} acknowledged events in ClickHouse",
               lambda: stream.acked <= _stored(spring, stream), timeout=180, interval=2,
               seen=lambda: f"{len(stream.acked - _stored(spring, stream))} missing")


def _two_replicas(spring: SpringService) -> tuple[Replica, Replica]:
    a = spring.start()
    a.wait_consuming()
    b = spring.start()
    b.wait_consuming()
    # Both in the group and the group settled: every partition owned, the two sets disjoint.
    wait_until("the 6 partitions split between the two replicas",
               lambda: len(_members(spring.admin, spring.group)) == 2
               and _assigned(a) and _assigned(b)
               and _assigned(a)[-1] | _assigned(b)[-1] == set(range(6))
               and not _assigned(a)[-1] & _assigned(b)[-1],
               timeout=120, seen=lambda: (_assigned(a)[-1:], _assigned(b)[-1:]))
    return a, b


def test_sigkill_mid_stream_loses_no_acknowledged_event(spring: SpringService) -> None:
    a, b = _two_replicas(spring)
    with Stream(spring, f"kill-{spring.tag}") as stream:
        time.sleep(8)
        owned_by_a = _assigned(a)[-1]
        a.kill()
        t_kill = time.monotonic()
        before = len(_assigned(b))
        wait_until("the survivor assigned every partition",
                   lambda: len(_assigned(b)) > before and _assigned(b)[-1] == set(range(6)), timeout=120,
                   seen=lambda: _assigned(b)[-2:])
        takeover = time.monotonic() - t_kill
        time.sleep(5)  # keep streaming into the survivor
    assert stream.failed == 0, f"{stream.failed} sends were not acknowledged by Kafka"
    assert len(stream.acked) > RATE * 10, f"only {len(stream.acked)} events acknowledged: the stream did not run"
    _wait_all_stored(spring, stream)
    spring.wait_no_lag(timeout=120)
    assert b.alive(), b.tail()
    print(f"SIGKILL of {a.name} (partitions {sorted(owned_by_a)}): {b.name} owned all 6 partitions "
          f"{takeover:.1f} s later; {len(stream.acked)} acknowledged events, none lost")


def test_sigterm_commits_and_leaves_the_group_at_once(spring: SpringService) -> None:
    a, b = _two_replicas(spring)
    with Stream(spring, f"term-{spring.tag}") as stream:
        time.sleep(5)
        t0 = time.monotonic()
        status = a.terminate(timeout=60)
        stopped = time.monotonic() - t0
        # Right after the process is gone, the group no longer lists it: it sent LeaveGroup instead
        # of letting its 45 s session expire.
        members = _members(spring.admin, spring.group)
        time.sleep(5)
    assert status in (0, 143), f"{a.name} exited with {status} after SIGTERM: {a.tail()}"
    assert "Consumer stopped" in a.log.read_text(errors="replace"), a.tail()
    assert not any(a.name in m for m in members), f"{a.name} still in the group after exiting: {members}"
    _wait_all_stored(spring, stream)
    spring.wait_no_lag(timeout=120)
    assert b.alive(), b.tail()
    print(f"SIGTERM: {a.name} exited {status} in {stopped:.1f} s; group members right after: {members}")
