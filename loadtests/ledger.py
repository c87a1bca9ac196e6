"""The ledger: every event the broker acknowledged, written so a killed load generator leaves it readable.

Layout of a ledger directory (format described in ``docs/ledger.md``)::

    <dir>/writer-<id>.json   who wrote the files below (role, worker index, pid, host, topic, seed, ...)
    <dir>/acked-<id>.jsonl   one JSON object per acknowledged event
    <dir>/failed-<id>.jsonl  one JSON object per produce that failed (not acknowledged)
    <dir>/merged/acked.jsonl the merge of every acked-*.jsonl (written by :func:`merge_ledger`)

Each Locust process (the standalone runner, or each worker in distributed mode)
is one *writer* with its own files, so writers never share a file. Records are
appended in small batches, each batch one ``write(2)`` on an ``O_APPEND`` file:
a SIGKILL loses at most the records acknowledged in the last
``flush_interval`` seconds (they are simply absent — every record present was
acknowledged) and can leave at most one torn last line per file, which
:func:`read_ledger` ignores. Surviving a host crash needs ``fsync=True``.

Probes use :func:`read_ledger`::

    ledger = read_ledger("reports/run-1/ledger")
    ledger.acked["3f0c..."].offset, ledger.count, ledger.time_range()
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

__all__ = ["FORMAT_VERSION", "AckedRecord", "FailedRecord", "Ledger", "LedgerError", "LedgerWriter",
           "merge_ledger", "read_ledger"]

FORMAT_VERSION = 1


class LedgerError(Exception):
    """A ledger that cannot be read or merged; the message names the file and line."""


@dataclass(frozen=True)
class AckedRecord:
    """An event the broker acknowledged (acks=all): where it is and when.

    ``produced_at`` is the event's own field (epoch ms when it was generated), ``acked_at``
    the epoch ms at which the acknowledgement reached the producer.
    """

    event_id: str
    topic: str
    partition: int
    offset: int
    produced_at: int
    acked_at: int
    app: str = ""
    writer: str = ""


@dataclass(frozen=True)
class FailedRecord:
    """A produce that was not acknowledged. It may or may not be in Kafka (a timeout is indeterminate)."""

    event_id: str
    topic: str
    produced_at: int
    failed_at: int
    error: str
    writer: str = ""


_SAFE_ID = re.compile(r"[0-9A-Za-z_.:-]*")


@functools.lru_cache(maxsize=1024)
def _quote(text: str) -> str:
    return json.dumps(text)


def _quote_id(text: str) -> str:
    return f'"{text}"' if _SAFE_ID.fullmatch(text) else json.dumps(text)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class LedgerWriter:
    """Appends acked and failed records of one writer to ``<dir>/acked-<id>.jsonl`` / ``failed-<id>.jsonl``.

    Arguments:
        directory: the ledger directory (created if missing).
        writer_id: unique per process, e.g. ``local-<host>-<pid>`` or ``worker3-<host>-<pid>``.
        meta: extra fields for ``writer-<id>.json`` (topic, seed, bootstrap, ...).
        batch_size: records buffered before a write.
        flush_interval: seconds after which a buffered record is written on the next
            :meth:`ack`/:meth:`fail`/:meth:`flush_if_due` call (run :meth:`flush_if_due`
            from a timer so an idle writer still writes).
        fsync: ``fsync(2)`` after every write (survives a host crash; slower).

    Safe to call from several threads (kafka-python calls back from its I/O thread).
    """

    def __init__(self, directory: str | os.PathLike[str], writer_id: str, meta: dict[str, Any] | None = None,
                 batch_size: int = 64, flush_interval: float = 0.2, fsync: bool = False) -> None:
        if "/" in writer_id or not writer_id:
            raise ValueError(f"writer_id: must be a non-empty file-name part, got {writer_id!r}")
        self.directory = Path(directory)
        self.writer_id = writer_id
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)
        info = {"format": FORMAT_VERSION, "writer": writer_id, "pid": os.getpid(), "host": socket.gethostname(),
                "started_at": _now_ms(), **(meta or {})}
        tmp = self.directory / f".writer-{writer_id}.json.tmp"
        tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")
        tmp.replace(self.directory / f"writer-{writer_id}.json")
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self._acked_fd = os.open(self.directory / f"acked-{writer_id}.jsonl", flags, 0o644)
        self._failed_fd = os.open(self.directory / f"failed-{writer_id}.jsonl", flags, 0o644)
        self._acked: list[str] = []
        self._failed: list[str] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self.acked_count = 0
        self.failed_count = 0
        self.closed = False
        logger.info("ledger writer %s in %s", writer_id, self.directory)

    def ack(self, event_id: str, topic: str, partition: int, offset: int, produced_at: int,
            acked_at: int | None = None, app: str = "") -> None:
        """Record one acknowledged event (``acked_at`` defaults to now, epoch ms)."""
        # Hand-built (json.dumps of a dict costs twice as much on the producer's I/O thread);
        # strings are escaped by json.dumps, cached for the few topics and apps there are.
        line = (f'{{"event_id":{_quote_id(event_id)},"topic":{_quote(topic)},"partition":{int(partition)},'
                f'"offset":{int(offset)},"produced_at":{int(produced_at)},"acked_at":{int(acked_at or _now_ms())},'
                f'"app":{_quote(app)}}}')
        with self._lock:
            self._acked.append(line)
            self.acked_count += 1
            if len(self._acked) >= self.batch_size:
                self._write(self._acked_fd, self._acked)
                self._acked = []
        self.flush_if_due()

    def fail(self, event_id: str, topic: str, produced_at: int, error: str, failed_at: int | None = None) -> None:
        """Record one produce that failed (``error`` is a one-line description)."""
        line = json.dumps({"event_id": event_id, "topic": topic, "produced_at": produced_at,
                           "failed_at": failed_at or _now_ms(), "error": error}, separators=(",", ":"))
        with self._lock:
            self._failed.append(line)
            self.failed_count += 1
        self.flush_if_due()

    def flush_if_due(self) -> None:
        """Write buffered records if ``flush_interval`` has passed since the last write."""
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write every buffered record now."""
        with self._lock:
            if self.closed:
                return
            if self._acked:
                self._write(self._acked_fd, self._acked)
                self._acked = []
            if self._failed:
                self._write(self._failed_fd, self._failed)
                self._failed = []
            self._last_flush = time.monotonic()

    def _write(self, fd: int, lines: list[str]) -> None:
        data = ("\n".join(lines) + "\n").encode()
        view = memoryview(data)
        while view:  # a regular file takes it in one call; loop anyway for short writes
            written = os.write(fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(fd)

    def close(self) -> None:
        """Flush and close the files; idempotent."""
        if self.closed:
            return
        self.flush()
        with self._lock:
            self.closed = True
            os.close(self._acked_fd)
            os.close(self._failed_fd)
        logger.info("ledger writer %s closed: %d acked, %d failed", self.writer_id, self.acked_count,
                    self.failed_count)

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Ledger:
    """What a ledger directory holds, merged over all its writers.

    Attributes:
        acked: acknowledged records by ``event_id``.
        failed: failed produces by ``event_id`` (an id acked on a retry is only in ``acked``).
        writers: the ``writer-*.json`` metadata, by writer id.
        duplicates: event ids acked more than once (kept: the first; a healthy run has none).
        torn_lines: torn last lines ignored (at most one per file; a killed writer leaves them).
    """

    acked: dict[str, AckedRecord] = field(default_factory=dict)
    failed: dict[str, FailedRecord] = field(default_factory=dict)
    writers: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    torn_lines: int = 0

    @property
    def count(self) -> int:
        """Number of distinct acknowledged events."""
        return len(self.acked)

    @property
    def failed_count(self) -> int:
        """Number of distinct events whose produce failed and that were never acknowledged."""
        return len(self.failed)

    def time_range(self) -> tuple[int, int] | None:
        """``(first produced_at, last acked_at)`` over the acked records in epoch ms, ``None`` if empty."""
        if not self.acked:
            return None
        return (min(r.produced_at for r in self.acked.values()), max(r.acked_at for r in self.acked.values()))

    def event_ids(self) -> set[str]:
        """The acknowledged event ids."""
        return set(self.acked)

    def by_partition(self) -> dict[tuple[str, int], list[AckedRecord]]:
        """Acked records grouped by ``(topic, partition)``, each list sorted by offset."""
        out: dict[tuple[str, int], list[AckedRecord]] = {}
        for rec in self.acked.values():
            out.setdefault((rec.topic, rec.partition), []).append(rec)
        for recs in out.values():
            recs.sort(key=lambda r: r.offset)
        return out

    def between(self, start_ms: int, end_ms: int) -> list[AckedRecord]:
        """Acked records produced in ``[start_ms, end_ms)`` (e.g. a fault window), by produced_at."""
        return sorted((r for r in self.acked.values() if start_ms <= r.produced_at < end_ms),
                      key=lambda r: r.produced_at)

    def summary(self) -> dict[str, Any]:
        """Counts and time range as a JSON-able dict (what ``python -m loadtests.ledger`` prints)."""
        return {"acked": self.count, "failed": self.failed_count, "writers": sorted(self.writers),
                "duplicates": len(self.duplicates), "torn_lines": self.torn_lines,
                "time_range_ms": self.time_range(),
                "partitions": {f"{t}/{p}": len(r) for (t, p), r in sorted(self.by_partition().items())}}


def _read_jsonl(path: Path, strict: bool) -> tuple[list[dict[str, Any]], int]:
    """Objects of a JSON-lines file and the number of torn last lines ignored (0 or 1)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = 0
    out: list[dict[str, Any]] = []
    last = len(lines) - 1
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            if i == last:  # no newline after it: the writer died mid-line
                logger.warning("%s: ignoring torn last line (%d bytes)", path, len(raw))
                torn += 1
                continue
            if strict:
                raise LedgerError(f"{path}:{i + 1}: not a ledger record ({exc}): {raw[:80]!r}") from None
            logger.warning("%s:%d: skipping unreadable line", path, i + 1)
            continue
        out.append(obj)
    return out, torn


_R = TypeVar("_R")


def _writer_of(path: Path, prefix: str) -> str:
    return path.name[len(prefix):-len(".jsonl")]


def _records(ledger: Ledger, files: list[Path], prefix: str, strict: bool,
             build: Callable[[dict[str, Any], str], _R]) -> Iterator[_R]:
    """The records of ``files`` (one writer each, named ``<prefix><writer>.jsonl``), built by ``build``.

    Registers each writer and counts torn lines in ``ledger``; a record with a missing or bad
    field raises :class:`LedgerError` (``strict``) or is skipped.
    """
    for path in files:
        writer = _writer_of(path, prefix)
        ledger.writers.setdefault(writer, {"writer": writer})
        objs, torn = _read_jsonl(path, strict)
        ledger.torn_lines += torn
        for n, obj in enumerate(objs, 1):
            try:
                rec = build(obj, writer)
            except (KeyError, TypeError, ValueError) as exc:
                if strict:
                    raise LedgerError(f"{path}: record {n}: missing or bad field {exc}") from None
                continue
            yield rec


def read_ledger(directory: str | os.PathLike[str], strict: bool = True) -> Ledger:
    """Read every writer's files in ``directory`` into one :class:`Ledger`.

    A torn last line (a writer killed mid-write) is ignored and counted in
    ``torn_lines``. Raises :class:`LedgerError` when the directory has no ledger
    files, or (``strict``) when a line other than the last is not a record,
    naming the file and line.
    """
    root = Path(directory)
    acked_files = sorted(root.glob("acked-*.jsonl"))
    failed_files = sorted(root.glob("failed-*.jsonl"))
    if not root.is_dir() or not (acked_files or failed_files):
        raise LedgerError(f"{root}: no ledger here (no acked-*.jsonl or failed-*.jsonl files)")
    ledger = Ledger()
    for meta in sorted(root.glob("writer-*.json")):
        try:
            info = json.loads(meta.read_text())
            ledger.writers[str(info.get("writer", meta.stem[len("writer-"):]))] = info
        except (OSError, ValueError) as exc:
            logger.warning("%s: unreadable writer metadata: %s", meta, exc)
    for rec in _records(ledger, acked_files, "acked-", strict, lambda obj, writer: AckedRecord(
            event_id=str(obj["event_id"]), topic=str(obj["topic"]), partition=int(obj["partition"]),
            offset=int(obj["offset"]), produced_at=int(obj["produced_at"]), acked_at=int(obj["acked_at"]),
            app=str(obj.get("app", "")), writer=writer)):
        if rec.event_id in ledger.acked:
            ledger.duplicates.append(rec.event_id)
            continue
        ledger.acked[rec.event_id] = rec
    for frec in _records(ledger, failed_files, "failed-", strict, lambda obj, writer: FailedRecord(
            event_id=str(obj["event_id"]), topic=str(obj["topic"]), produced_at=int(obj["produced_at"]),
            failed_at=int(obj["failed_at"]), error=str(obj.get("error", "")), writer=writer)):
        if frec.event_id not in ledger.acked:
            ledger.failed.setdefault(frec.event_id, frec)
    for eid in list(ledger.failed):
        if eid in ledger.acked:
            del ledger.failed[eid]
    return ledger


def merge_ledger(directory: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Ledger:
    """Merge every writer of ``directory`` into ``<out>/acked.jsonl`` and ``failed.jsonl``.

    ``out`` defaults to ``<directory>/merged``. Acked records are sorted by
    (topic, partition, offset). Raises :class:`LedgerError` if an event id was acked
    twice or two events claim one (topic, partition, offset): either is a
    load-generator bug, not data loss, and must not be averaged away.
    Returns the merged :class:`Ledger`.
    """
    ledger = read_ledger(directory)
    if ledger.duplicates:
        raise LedgerError(f"{directory}: {len(ledger.duplicates)} event ids acked twice, e.g. "
                          f"{ledger.duplicates[:3]}")
    seen: dict[tuple[str, int, int], str] = {}
    for rec in ledger.acked.values():
        where = (rec.topic, rec.partition, rec.offset)
        if where in seen:
            raise LedgerError(f"{directory}: events {seen[where]} and {rec.event_id} both acked at "
                              f"{rec.topic}/{rec.partition}@{rec.offset}")
        seen[where] = rec.event_id
    target = Path(out) if out is not None else Path(directory) / "merged"
    target.mkdir(parents=True, exist_ok=True)
    records = sorted(ledger.acked.values(), key=lambda r: (r.topic, r.partition, r.offset))
    _write_all(target / "acked.jsonl", (asdict(r) for r in records))
    _write_all(target / "failed.jsonl", (asdict(r) for r in sorted(ledger.failed.values(),
                                                                     key=lambda r: r.produced_at)))
    (target / "summary.json").write_text(json.dumps(ledger.summary(), indent=2) + "\n")
    logger.info("merged %d writers of %s: %d acked, %d failed -> %s", len(ledger.writers), directory,
                ledger.count, ledger.failed_count, target)
    return ledger


def _write_all(path: Path, objs: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as fh:
        for obj in objs:
            fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m loadtests.ledger DIR [--merge]``: print a ledger's summary, optionally merge it."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m loadtests.ledger", description=main.__doc__)
    parser.add_argument("directory")
    parser.add_argument("--merge", action="store_true", help="also write DIR/merged/")
    args = parser.parse_args(argv)
    try:
        ledger = merge_ledger(args.directory) if args.merge else read_ledger(args.directory)
    except LedgerError as exc:
        print(f"error: {exc}")
        return 1
    print(json.dumps(ledger.summary(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
