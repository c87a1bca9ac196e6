"""Consumer lag, read from Kafka itself.

A dead service cannot report its own lag, so lag is computed from what the broker
knows: the group's committed offsets and the partitions' end offsets, through the
admin API. ``lag = end offset - committed offset`` per partition; a partition with
no committed offset counts from its beginning offset (the service reads from the
earliest offset when it has none).

Used by the lag exporter (``stack/kafka_lag_exporter.py``, scraped by Prometheus every
second) and directly by probes that must not depend on Prometheus (the drain wait
before an RPO verdict).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from clients.kafka import KafkaAuth

logger = logging.getLogger(__name__)

__all__ = ["GroupAssignment", "LagReader", "LagSnapshot"]


@dataclass(frozen=True)
class LagSnapshot:
    """Lag of one consumer group on one topic at ``taken_at`` (epoch seconds)."""

    group: str
    topic: str
    taken_at: float
    end_offsets: dict[int, int]
    committed: dict[int, int | None]
    beginning_offsets: dict[int, int] = field(default_factory=dict)

    def partition_lag(self, partition: int) -> int:
        end = self.end_offsets[partition]
        committed = self.committed.get(partition)
        start = committed if committed is not None else self.beginning_offsets.get(partition, 0)
        return max(0, end - start)

    @property
    def lag(self) -> dict[int, int]:
        return {p: self.partition_lag(p) for p in sorted(self.end_offsets)}

    @property
    def total(self) -> int:
        return sum(self.lag.values())

    @property
    def produced(self) -> int:
        """Sum of end offsets: how many records the topic has ever received."""
        return sum(self.end_offsets.values())


@dataclass(frozen=True)
class GroupAssignment:
    """Which member of a consumer group holds which partition of one topic (Kafka's DescribeGroups).

    ``held`` maps each assigned partition to the member's client id and host. A group in the middle of a
    rebalance reports no assignment (``state`` is not ``Stable``), so every partition reads as unheld.
    """

    group: str
    topic: str
    state: str
    partitions: tuple[int, ...]
    held: dict[int, str]
    members: tuple[str, ...] = ()
    """Every member's client id (with or without partitions: a consumer beyond the partition count idles)."""

    @property
    def unheld(self) -> list[int]:
        return [p for p in self.partitions if p not in self.held]

    @property
    def complete(self) -> bool:
        return self.state == "Stable" and not self.unheld

    def describe(self) -> str:
        members = len(set(self.held.values()))
        return (f"group {self.group!r} is {self.state or 'unknown'}: {len(self.held)} of {len(self.partitions)} "
                f"partitions of {self.topic!r} held by {members} member(s)"
                + (f", unheld {self.unheld}" if self.unheld else ""))


def _assigned(member: dict[str, object], topic: str) -> list[int]:
    """The partitions of ``topic`` in one member's decoded assignment (kafka-python's dict form)."""
    assignment = member.get("member_assignment")
    if isinstance(assignment, dict):
        entries = assignment.get("assigned_partitions") or []
    else:  # a ConsumerProtocolAssignment left as an object, or an assignment that did not decode
        entries = getattr(assignment, "assigned_partitions", None) or []
    out: list[int] = []
    for entry in entries:
        name = entry.get("topic") if isinstance(entry, dict) else getattr(entry, "topic", None)
        parts = entry.get("partitions") if isinstance(entry, dict) else getattr(entry, "partitions", None)
        if name == topic:
            out.extend(int(x) for x in parts or [])
    return out


class LagReader:
    """Reads :class:`LagSnapshot` s; keeps its Kafka connections between reads. Close it when done."""

    def __init__(self, bootstrap: str, group: str, topic: str, timeout_s: float = 5.0,
                 auth: KafkaAuth | None = None) -> None:
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        ms = int(timeout_s * 1000)
        security = (auth or KafkaAuth()).client_kwargs()
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sqlaudit-lag-reader",
                                       request_timeout_ms=ms, bootstrap_timeout_ms=ms, **security)
        try:
            self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="sqlaudit-lag-reader",
                                           enable_auto_commit=False, request_timeout_ms=max(ms, 11000),
                                           group_id=None, **security)
        except Exception:
            self._admin.close()
            raise
        self._partitions: list[TopicPartition] | None = None

    def _topic_partitions(self) -> list[TopicPartition]:
        if self._partitions is None:
            parts = self._consumer.partitions_for_topic(self.topic)
            if not parts:
                raise LookupError(f"topic {self.topic!r} not found at {self.bootstrap}")
            self._partitions = [TopicPartition(self.topic, p) for p in sorted(parts)]
        return self._partitions

    def read(self) -> LagSnapshot:
        """One snapshot; raises on any Kafka error (never returns a made-up zero)."""
        parts = self._topic_partitions()
        committed_raw = self._admin.list_group_offsets({self.group: parts}).get(self.group, {})
        end = self._consumer.end_offsets(parts)
        begin = self._consumer.beginning_offsets(parts)
        committed: dict[int, int | None] = {}
        for tp in parts:
            meta = committed_raw.get(tp)
            committed[tp.partition] = meta.offset if meta is not None and meta.offset >= 0 else None
        return LagSnapshot(group=self.group, topic=self.topic, taken_at=time.time(),
                           end_offsets={tp.partition: int(end[tp]) for tp in parts}, committed=committed,
                           beginning_offsets={tp.partition: int(begin[tp]) for tp in parts})

    def assignment(self) -> GroupAssignment:
        """Who holds each partition of the topic now; raises on any Kafka error."""
        parts = tuple(tp.partition for tp in self._topic_partitions())
        described = self._admin.describe_groups([self.group]).get(self.group) or {}
        held: dict[int, str] = {}
        members: list[str] = []
        for member in described.get("members") or []:
            who = f"{member.get('client_id', '?')}@{str(member.get('client_host', '?')).lstrip('/')}"
            members.append(str(member.get("client_id", "?")))
            for partition in _assigned(member, self.topic):
                held[partition] = who
        return GroupAssignment(group=self.group, topic=self.topic, state=str(described.get("group_state") or ""),
                               partitions=parts, held=held, members=tuple(sorted(members)))

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            try:
                client.close()
            except Exception as exc:  # closing is best effort
                logger.debug("closing %s: %s", client, exc)

    def __enter__(self) -> LagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
