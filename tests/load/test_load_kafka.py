"""Load into the real Kafka of the local stack: the ledger against what Kafka holds."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from loadtests.ledger import Ledger, merge_ledger, read_ledger
from loadtests.locust_process import LOAD_NICE, LoadHandle, kill_load, start_load, stop_load, wait_load
from sqlaudit.events import decode_event
from tests.load.kafka_readback import end_offsets, read_topic

pytestmark = pytest.mark.stack

RUN_TIMEOUT_S = 90.0


def assert_ledger_in_kafka(ledger: Ledger, bootstrap: str, topic: str) -> dict[tuple[int, int], str]:
    """Every ledger record is in Kafka at its partition/offset, with its event id and key; returns
    Kafka's content as {(partition, offset): event_id}."""
    messages = read_topic(bootstrap, topic)
    in_kafka = {where: str(decode_event(m.value).event_id) for where, m in messages.items()}
    for rec in ledger.acked.values():
        assert rec.topic == topic
        where = (rec.partition, rec.offset)
        assert where in in_kafka, f"{rec.event_id} not in Kafka at {topic}/{rec.partition}@{rec.offset}"
        assert in_kafka[where] == rec.event_id, f"{topic}/{rec.partition}@{rec.offset} holds another event"
        assert messages[where].key == rec.app.encode()
    return in_kafka


def stop_quietly(handle: LoadHandle) -> None:
    if handle.is_running():
        stop_load(handle, timeout=20)


def test_fixed_rate_ledger_is_exactly_what_kafka_acknowledged(
        kafka_bootstrap: str, fresh_topic: Callable[[int], str], tmp_path: Path) -> None:
    topic = fresh_topic(3)
    n = 600
    handle = start_load(kafka_bootstrap, "steady", rate=200, duration=60, seed=11, topic=topic, max_events=n,
                        run_dir=str(tmp_path / "run"), user_rate=100)
    try:
        result = wait_load(handle, timeout=RUN_TIMEOUT_S)
    finally:
        stop_quietly(handle)
    assert result.exit_code == 0, (Path(handle.run_dir) / "locust.log").read_text()[-3000:]
    if os.geteuid() == 0:  # the generator, an instrument, runs ahead of the stack it measures
        assert handle.nice == max(-20, os.nice(0) + LOAD_NICE), handle.nice
    ledger = result.ledger
    assert ledger is not None, result.ledger_error
    assert ledger.count == n and ledger.failed_count == 0 and not ledger.duplicates and ledger.torn_lines == 0
    assert result.stats["requests"] == n and result.stats["failures"] == 0  # Locust counted every produce
    in_kafka = assert_ledger_in_kafka(ledger, kafka_bootstrap, topic)
    assert set(in_kafka.values()) == ledger.event_ids()  # nothing in Kafka that the ledger lacks
    start, end = ledger.time_range()  # type: ignore[misc]
    assert 2000 <= end - start < 30000  # 600 events at 200/s: about 3 s, not a burst


def test_sigkilled_load_generator_leaves_a_readable_ledger(
        kafka_bootstrap: str, fresh_topic: Callable[[int], str], tmp_path: Path) -> None:
    topic = fresh_topic(3)
    handle = start_load(kafka_bootstrap, "steady", rate=300, duration=60, seed=12, topic=topic,
                        run_dir=str(tmp_path / "run"))
    assert handle.ledger_dir is not None
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until the ledger holds a few hundred records, then kill mid-run
            assert time.monotonic() < deadline, "ledger did not fill within 30 s"
            assert handle.is_running(), (Path(handle.run_dir) / "locust.log").read_text()[-3000:]
            files = list(Path(handle.ledger_dir).glob("acked-*.jsonl"))
            if sum(f.read_bytes().count(b"\n") for f in files) >= 300:
                break
            time.sleep(0.2)
        result = kill_load(handle)
    finally:
        stop_quietly(handle)
    assert result.exit_code == -9
    assert not handle.is_running()
    ledger = read_ledger(handle.ledger_dir)
    assert ledger.count >= 300 and not ledger.duplicates
    in_kafka = assert_ledger_in_kafka(ledger, kafka_bootstrap, topic)
    # The ledger lags Kafka by at most the unflushed tail (0.2 s at 300/s) plus in-flight sends.
    assert len(in_kafka) - ledger.count < 300


@pytest.mark.extended
def test_distributed_mode_merges_worker_ledgers_without_duplicates_or_gaps(
        kafka_bootstrap: str, fresh_topic: Callable[[int], str], tmp_path: Path) -> None:
    topic = fresh_topic(3)
    n = 800
    # Locust's default master port taken, as by another load generator on the machine: ours must not care.
    squatter = socket.socket()
    with contextlib.suppress(OSError):
        squatter.bind(("0.0.0.0", 5557))
        squatter.listen()
    handle = start_load(kafka_bootstrap, "steady", rate=200, duration=60, seed=13, topic=topic, max_events=n,
                        workers=2, run_dir=str(tmp_path / "run"), user_rate=50)
    try:
        result = wait_load(handle, timeout=RUN_TIMEOUT_S)
    finally:
        stop_quietly(handle)
        squatter.close()
    assert result.exit_code == 0, (Path(handle.run_dir) / "locust.log").read_text()[-3000:]
    assert handle.ledger_dir is not None
    writers = {p.name for p in Path(handle.ledger_dir).glob("acked-worker*.jsonl")}
    assert len(writers) == 2, writers
    ledger = merge_ledger(handle.ledger_dir)
    assert ledger.count == n and not ledger.duplicates and ledger.failed_count == 0
    assert {r.writer.split("-")[0] for r in ledger.acked.values()} == {"worker0", "worker1"}
    assert result.stats["requests"] == n  # the master aggregated both workers' statistics
    # No gaps: per partition, the merged offsets are exactly 0..end-1 of what Kafka holds.
    ends = end_offsets(kafka_bootstrap, topic)
    by_part = ledger.by_partition()
    for partition, end in ends.items():
        offsets = [r.offset for r in by_part.get((topic, partition), [])]
        assert offsets == list(range(end)), f"partition {partition}: gaps or extras vs end offset {end}"
    assert sum(ends.values()) == n
    assert_ledger_in_kafka(ledger, kafka_bootstrap, topic)
    merged = Path(handle.ledger_dir) / "merged" / "acked.jsonl"
    assert len(merged.read_text().splitlines()) == n


def test_spike_shape_raises_the_rate_through_the_runner(
        kafka_bootstrap: str, fresh_topic: Callable[[int], str], tmp_path: Path) -> None:
    topic = fresh_topic(3)
    handle = start_load(kafka_bootstrap, "spike", rate=50, duration=10, seed=14, topic=topic,
                        run_dir=str(tmp_path / "run"), user_rate=100, options={"spike_factor": 4.0})
    try:
        result = wait_load(handle, timeout=RUN_TIMEOUT_S)
    finally:
        stop_quietly(handle)
    assert result.exit_code == 0
    ledger = result.ledger
    assert ledger is not None
    start, _ = ledger.time_range()  # type: ignore[misc]
    per_second: dict[int, int] = {}
    for rec in ledger.acked.values():
        second = (rec.produced_at - start) // 1000
        per_second[second] = per_second.get(second, 0) + 1
    base = per_second.get(1, 0)
    surge = max(per_second.get(3, 0), per_second.get(4, 0))
    assert 30 <= base <= 70, per_second  # 50/s
    assert surge >= 2.5 * base, per_second  # 200/s during the spike (30 %..50 % of 10 s)
    # plan: 3 s at 50 + 2 s at 200 + 5 s at 50 = 800 events
    assert 650 <= ledger.count <= 850, ledger.count


def test_stop_load_mid_run_flushes_every_acknowledgement(
        kafka_bootstrap: str, fresh_topic: Callable[[int], str], tmp_path: Path) -> None:
    topic = fresh_topic(3)
    handle = start_load(kafka_bootstrap, "steady", rate=200, duration=60, seed=15, topic=topic,
                        run_dir=str(tmp_path / "run"))
    try:
        deadline = time.monotonic() + 30
        while not list(Path(str(handle.ledger_dir)).glob("acked-*.jsonl")) or read_ledger(
                str(handle.ledger_dir)).count < 200:
            assert time.monotonic() < deadline, "ledger did not fill within 30 s"
            assert handle.is_running()
            time.sleep(0.2)
        result = stop_load(handle, timeout=30)  # SIGINT: Locust stops users, producers flush
    finally:
        stop_quietly(handle)
    assert result.exit_code == 0
    assert result.ledger is not None and result.ledger.count >= 200
    in_kafka = assert_ledger_in_kafka(result.ledger, kafka_bootstrap, topic)
    assert set(in_kafka.values()) == result.ledger.event_ids()  # graceful: nothing acked is missing
    assert stop_load(handle).exit_code == 0  # idempotent
