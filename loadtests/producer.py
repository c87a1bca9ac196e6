"""Keeping a kafka-python producer usable through a Kafka outage (no Locust import: testable alone).

kafka-python 3.0's idempotent producer can wedge for good after an outage of the broker longer
than ``delivery_timeout_ms``: when a batch that had already been sent once expires, the sender
resets the producer id (``TransactionManager.reset_producer_id``) but leaves the transaction state
at ``READY``; a new producer id is only requested from ``UNINITIALIZED``, so none is ever
requested, and the sender waits for one forever. From then on nothing is drained, nothing expires,
and no future of a ``send()`` resolves: no acknowledgement, no failure, no exception
(docs/load.md, "Broker outages").

Whatever the cause, a future that is still unresolved well after ``delivery_timeout_ms`` breaks
the producer's contract (every record is acknowledged or failed within it), so
:class:`PendingSends` tracks the unresolved sends of a producer and the user replaces a producer
whose oldest one is overdue. :func:`close_producer` closes a producer even when it is wedged:
kafka-python's ``close()`` flushes first and raises ``KafkaTimeoutError`` when the flush times
out, before it reaches its own force-close, which would leave the wedged I/O thread running and
its futures unresolved.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import OrderedDict
from typing import Any

from kafka.errors import KafkaTimeoutError

logger = logging.getLogger(__name__)

__all__ = ["FORCE_CLOSE_JOIN_S", "PendingSends", "close_producer"]

FORCE_CLOSE_JOIN_S = 5.0  # the I/O thread fails what is left and exits within one poll (retry_backoff_ms)


class PendingSends:
    """Sends of one producer whose future has not resolved yet, oldest first.

    ``add`` when ``send()`` returned a future, ``done`` from the future's callback (acknowledged
    or failed). Both are O(1); callbacks run on the producer's I/O thread, which under Locust is a
    greenlet of the same OS thread.
    """

    def __init__(self) -> None:
        self._sends: OrderedDict[int, float] = OrderedDict()
        self._tokens = itertools.count()

    def add(self, now: float) -> int:
        """Record a send made at ``now`` (monotonic seconds); returns its token for :meth:`done`."""
        token = next(self._tokens)
        self._sends[token] = now
        return token

    def done(self, token: int, *_result: Any) -> None:
        """The send's future resolved (extra arguments: the future's value, ignored)."""
        self._sends.pop(token, None)

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest unresolved send has been waiting (0 when none is)."""
        if not self._sends:
            return 0.0
        return now - next(iter(self._sends.values()))

    def __len__(self) -> int:
        return len(self._sends)


def close_producer(producer: Any, timeout: float) -> bool:
    """Close a kafka-python producer, waiting up to ``timeout`` s for what is in flight.

    Returns ``True`` when everything was flushed. Otherwise (``close`` raised ``KafkaTimeoutError``:
    sends still unresolved) the producer's I/O thread is force-closed, which fails every
    unresolved future with ``IllegalStateError("Producer is closed forcefully.")`` (their errbacks
    run), and ``False`` is returned. Never raises ``KafkaTimeoutError``.
    """
    try:
        producer.close(timeout=timeout)
        return True
    except KafkaTimeoutError:
        pass
    # Private but stable since kafka-python 1.x: the Sender thread and its force_close(), which
    # close() itself calls only after a successful flush.
    sender = getattr(producer, "_sender", None)
    if sender is None or not hasattr(sender, "force_close"):
        logger.warning("loadtests: producer did not flush within %.0f s and cannot be force-closed", timeout)
        return False
    sender.force_close()
    sender.join(FORCE_CLOSE_JOIN_S)
    if sender.is_alive():
        logger.warning("loadtests: producer I/O thread still alive %.0f s after force-close", FORCE_CLOSE_JOIN_S)
    with contextlib.suppress(KafkaTimeoutError):
        producer.close(timeout=0)  # nothing left to flush now: marks it closed, releases its metrics
    return False
