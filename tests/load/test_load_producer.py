"""The producer watchdog's parts, without a broker: unresolved sends and a close that always ends."""

from __future__ import annotations

from typing import Any

from kafka.errors import KafkaTimeoutError

from loadtests.producer import PendingSends, close_producer


def test_pending_sends_age_is_that_of_the_oldest_unresolved() -> None:
    pending = PendingSends()
    assert pending.oldest_age(100.0) == 0.0 and len(pending) == 0
    first, second, third = pending.add(10.0), pending.add(11.0), pending.add(12.0)
    assert pending.oldest_age(40.0) == 30.0
    pending.done(second, "metadata")  # resolved out of order: the oldest is still the first
    assert pending.oldest_age(40.0) == 30.0 and len(pending) == 2
    pending.done(first, KafkaTimeoutError("expired"))
    assert pending.oldest_age(40.0) == 28.0
    pending.done(third)
    pending.done(third)  # a second resolution is harmless
    assert pending.oldest_age(40.0) == 0.0 and len(pending) == 0


class FakeSender:
    def __init__(self) -> None:
        self.forced = False
        self.joined: float | None = None

    def force_close(self) -> None:
        self.forced = True

    def join(self, timeout: float) -> None:
        self.joined = timeout

    def is_alive(self) -> bool:
        return not self.forced


class FakeProducer:
    """kafka-python's close(): flush first, raising KafkaTimeoutError while sends are unresolved."""

    def __init__(self, unresolved: int) -> None:
        self.unresolved = unresolved
        self._sender = FakeSender()
        self.closes: list[float] = []
        self.closed = False

    def close(self, timeout: Any = None) -> None:
        self.closes.append(timeout)
        if self.unresolved and not self._sender.forced:
            raise KafkaTimeoutError("Timeout waiting for future")
        self.closed = True


def test_close_producer_flushes_a_healthy_producer() -> None:
    producer = FakeProducer(unresolved=0)
    assert close_producer(producer, 15.0) is True
    assert producer.closes == [15.0] and producer.closed and not producer._sender.forced


def test_close_producer_force_closes_a_wedged_producer() -> None:
    producer = FakeProducer(unresolved=3500)
    assert close_producer(producer, 0.0) is False  # no KafkaTimeoutError escapes
    assert producer._sender.forced and producer._sender.joined  # its unresolved sends are failed
    assert producer.closes == [0.0, 0] and producer.closed
