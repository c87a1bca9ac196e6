"""Poison records against the dead-letter topic: every invalid record the broker took must be dead-lettered.

The service may not drop an invalid record silently (it would vanish from every count) nor stall on it
(the valid events behind it would wait): it writes it, key and value unchanged, to the dead-letter topic
and goes on. :func:`dead_letter_keys` reads every key of that topic (a topic of failures stays small);
:func:`account` names each acknowledged poison record (``loadtests/poison.py``'s ``poison.jsonl``) whose key
is not there. Matching is by key, which both reference services copy, so any header scheme will do.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from clients.kafka import KafkaAuth
from probes.prom import ProbeError

__all__ = ["PoisonAccount", "account", "dead_letter_keys"]


def dead_letter_keys(bootstrap: str, topic: str, auth: KafkaAuth | None = None, timeout_s: float = 60.0
                     ) -> set[str]:
    """Every record key in ``topic`` from its beginning to its end offsets now. Raises :class:`ProbeError`."""
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="sqlaudit-dlq-reader", group_id=None,
                                 enable_auto_commit=False, request_timeout_ms=15_000,
                                 **(auth or KafkaAuth()).client_kwargs())
    except Exception as exc:
        raise ProbeError(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from None
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise ProbeError(f"Kafka at {bootstrap}: dead-letter topic {topic!r} not found")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        keys: set[str] = set()
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                behind = {tp.partition: end[tp] - consumer.position(tp) for tp in tps}
                raise ProbeError(f"Kafka at {bootstrap}: dead-letter topic {topic!r} not read to its end within "
                                 f"{timeout_s:.0f} s (records left per partition: {behind})")
            for records in consumer.poll(timeout_ms=1000).values():
                keys.update(r.key.decode(errors="replace") for r in records if r.key is not None)
        return keys
    finally:
        consumer.close()


@dataclass(frozen=True)
class PoisonAccount:
    """The poison records of a run, against the dead-letter topic's keys."""

    acked: int
    missing: list[dict[str, Any]]  # the acknowledged records whose key is not dead-lettered, in key order

    def describe(self) -> str:
        if not self.missing:
            return ""
        named = ", ".join(f"{r['key']} ({r['kind']}, {r['topic']}/{r['partition']}@{r['offset']})"
                          for r in self.missing[:20])
        more = f" ... ({len(self.missing) - 20} more)" if len(self.missing) > 20 else ""
        return f"{len(self.missing)} of {self.acked} poison records are not in the dead-letter topic: {named}{more}"


def account(acked: Iterable[dict[str, Any]], dead_lettered: set[str]) -> PoisonAccount:
    records = list(acked)
    missing = sorted((r for r in records if r["key"] not in dead_lettered), key=lambda r: r["key"])
    return PoisonAccount(acked=len(records), missing=missing)
