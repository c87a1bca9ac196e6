"""The ledger format: writer, tolerant reader, merge — without Kafka."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from loadtests.ledger import LedgerError, LedgerWriter, merge_ledger, read_ledger


def ack(w: LedgerWriter, i: int, partition: int = 0, topic: str = "t") -> str:
    eid = str(uuid.UUID(int=i + 1))
    w.ack(eid, topic, partition, i, produced_at=1000 + i, acked_at=2000 + i, app="a")
    return eid


def test_round_trip(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path, "w1", meta={"topic": "t", "seed": 3}, batch_size=4) as w:
        ids = [ack(w, i, partition=i % 2) for i in range(10)]
        w.fail("f-1", "t", produced_at=5, error="KafkaTimeoutError: x")
    ledger = read_ledger(tmp_path)
    assert ledger.count == 10 and ledger.event_ids() == set(ids)
    assert ledger.failed_count == 1 and ledger.failed["f-1"].error.startswith("KafkaTimeoutError")
    assert ledger.time_range() == (1000, 2009)
    assert [r.offset for r in ledger.by_partition()[("t", 1)]] == [1, 3, 5, 7, 9]
    assert ledger.writers["w1"]["seed"] == 3 and ledger.writers["w1"]["format"] == 1
    assert [r.produced_at for r in ledger.between(1002, 1004)] == [1002, 1003]


def test_records_reach_the_file_in_small_batches(tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path, "w1", batch_size=3, flush_interval=60)
    for i in range(7):
        ack(w, i)
    assert read_ledger(tmp_path).count == 6  # two full batches written, one record buffered
    w.flush()
    assert read_ledger(tmp_path).count == 7
    w.close()


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path, "w1") as w:
        for i in range(3):
            ack(w, i)
    with (tmp_path / "acked-w1.jsonl").open("a") as fh:
        fh.write('{"event_id":"00000000-0000-0000-0000-0000000000ff","topic":"t","parti')
    ledger = read_ledger(tmp_path)
    assert ledger.count == 3 and ledger.torn_lines == 1


def test_garbage_inside_the_file_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path, "w1") as w:
        ack(w, 0)
    with (tmp_path / "acked-w1.jsonl").open("a") as fh:
        fh.write("garbage\n")
        fh.write(json.dumps({"event_id": "x", "topic": "t", "partition": 0, "offset": 9, "produced_at": 1,
                             "acked_at": 2}) + "\n")
    with pytest.raises(LedgerError, match=r"acked-w1.jsonl:2"):
        read_ledger(tmp_path)
    assert read_ledger(tmp_path, strict=False).count == 2


def test_no_ledger_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger"):
        read_ledger(tmp_path)


def test_merge_combines_writers(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path, "w0") as a, LedgerWriter(tmp_path, "w1") as b:
        for i in range(6):
            ack(a if i % 2 else b, i)
    ledger = merge_ledger(tmp_path)
    assert ledger.count == 6 and set(ledger.writers) == {"w0", "w1"}
    lines = (tmp_path / "merged" / "acked.jsonl").read_text().splitlines()
    assert [json.loads(x)["offset"] for x in lines] == list(range(6))
    assert read_ledger(tmp_path).count == 6  # the merged copy is not read twice


def test_merge_refuses_duplicates_and_offset_collisions(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path / "dup", "w0") as a, LedgerWriter(tmp_path / "dup", "w1") as b:
        ack(a, 1)
        ack(b, 1)
    with pytest.raises(LedgerError, match="acked twice"):
        merge_ledger(tmp_path / "dup")
    with LedgerWriter(tmp_path / "col", "w0") as a:
        a.ack("e1", "t", 0, 5, 1, 2)
        a.ack("e2", "t", 0, 5, 1, 2)
    with pytest.raises(LedgerError, match="both acked at t/0@5"):
        merge_ledger(tmp_path / "col")


def test_acked_wins_over_an_earlier_failure(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path, "w0") as w:
        w.fail("e1", "t", 1, "timeout")
        w.ack("e1", "t", 0, 0, 1, 2)
    ledger = read_ledger(tmp_path)
    assert ledger.count == 1 and ledger.failed_count == 0


WRITER_SCRIPT = """
import sys, time, uuid
from loadtests.ledger import LedgerWriter
w = LedgerWriter(sys.argv[1], "victim", batch_size=16, flush_interval=0.05)
i = 0
while True:
    w.ack(str(uuid.UUID(int=i + 1)), "t", 0, i, 1, 2)
    i += 1
    if i % 16 == 0:
        time.sleep(0.001)
"""


def test_sigkilled_writer_leaves_a_readable_ledger(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 20
        path = tmp_path / "acked-victim.jsonl"
        while not (path.exists() and path.stat().st_size > 200_000):
            assert time.monotonic() < deadline, "writer wrote too little in 20 s"
            assert proc.poll() is None, "writer died"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    ledger = read_ledger(tmp_path)
    offsets = sorted(r.offset for r in ledger.acked.values())
    assert offsets == list(range(len(offsets)))  # a prefix, nothing skipped
    assert ledger.count > 1000 and ledger.torn_lines <= 1
