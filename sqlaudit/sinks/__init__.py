"""Where the service makes things durable: ClickHouse (every event), PostgreSQL (violations) and
the dead-letter topic (invalid records). Every sink raises :class:`SinkError` on failure, is safe
to retry with the same input, and has a cheap ``ping`` for readiness."""

from __future__ import annotations

__all__ = ["SinkError"]


class SinkError(RuntimeError):
    """A write or probe of ``sink`` failed; the batch must be retried, never dropped."""

    def __init__(self, sink: str, message: str) -> None:
        super().__init__(f"{sink}: {message}")
        self.sink = sink
