"""Dead-letter sink: invalid records, byte for byte, to the dead-letter topic.

Each record keeps its key and value and gets headers saying why and where it came from:
``dlq.reason``, ``dlq.topic``, ``dlq.partition``, ``dlq.offset``, ``dlq.replica``, ``dlq.failed_at_ms``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from sqlaudit.sinks import SinkError

__all__ = ["DeadLetter", "DeadLetterSink"]

logger = logging.getLogger(__name__)

SINK = "dlq"


@dataclass(frozen=True)
class DeadLetter:
    """An invalid record and why it is invalid."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str


class DeadLetterSink:
    """Produces dead letters with ``acks=all`` and waits for every acknowledgement."""

    name = SINK

    def __init__(self, bootstrap: str, topic: str, replica: str, timeout_s: float = 5.0,
                 security: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self._security = dict(security or {})  # SASL/TLS keywords (Settings.kafka_security)
        self.replica = replica
        self.timeout_s = timeout_s
        self._bootstrap = bootstrap
        self._producer: KafkaProducer | None = None

    def _get(self) -> KafkaProducer:
        if self._producer is None:
            ms = int(self.timeout_s * 1000)
            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap, client_id=f"sqlaudit-dlq-{self.replica}", acks="all",
                linger_ms=0, request_timeout_ms=ms, max_block_ms=ms, delivery_timeout_ms=ms * 2,
                bootstrap_timeout_ms=ms,
                # kafka-python 3's idempotent producer wedges for good once a batch it had sent expires
                # (an outage longer than the delivery timeout; loadtests/producer.py has the details).
                # Dead letters are at-least-once anyway (a retry may write one twice), so idempotence
                # buys nothing here and would cost the partition behind the letter.
                enable_idempotence=False, **self._security)
        return self._producer

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Produce ``letters`` and wait until all are acknowledged. Raises :class:`SinkError`."""
        if not letters:
            return
        try:
            producer = self._get()
            now = str(int(time.time() * 1000)).encode()
            futures = [producer.send(self.topic, key=d.key, value=d.value if d.value is not None else b"", headers=[
                ("dlq.reason", d.reason.encode()[:1024]), ("dlq.topic", d.topic.encode()),
                ("dlq.partition", str(d.partition).encode()), ("dlq.offset", str(d.offset).encode()),
                ("dlq.replica", self.replica.encode()), ("dlq.failed_at_ms", now)]) for d in letters]
            producer.flush(timeout=self.timeout_s * 2)
            for f in futures:
                f.get(timeout=self.timeout_s)
        except (KafkaError, OSError) as exc:
            self._discard()  # the next attempt starts from a fresh producer and fresh metadata
            raise SinkError(SINK, f"{len(letters)} dead letters not acknowledged: "
                                  f"{type(exc).__name__}: {exc}") from exc

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except KafkaError as exc:  # whatever was unsent fails with it: those letters are retried
                logger.debug("discarding the dead-letter producer: %s", exc)

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=self.timeout_s)
            except KafkaError as exc:
                logger.warning("dead-letter producer close: %s", exc)
            self._producer = None
