"""The load keeps producing after the only Kafka broker was down longer than the delivery timeout.

Reproduces what made ``cluster_loss`` inconclusive: the broker is stopped for 30 s by the same
fault the experiment uses (``faults.kafka_broker.stop_kafka_broker``, a controlled shutdown through
the stack's supervisord), started again, and the ledger must keep growing within 30 s. Before the
fix, kafka-python 3's idempotent producer wedged itself once a batch it had already sent expired
(``delivery_timeout_ms`` 30 s): no acknowledgement and no failure ever again (docs/load.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from faults import kafka_broker
from faults.cleanup import cleanup
from loadtests.locust_process import LoadHandle, start_load, stop_load
from stack.core import LocalStack
from tests.load.conftest import _wait_for_leaders
from tests.load.test_load_kafka import assert_ledger_in_kafka, stop_quietly

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.extended]

OUTAGE_S = 30.0  # as in experiments/cluster_loss.yaml; the producer's delivery timeout is 30 s too
RESUME_WITHIN_S = 30.0
RESUMED_EVENTS = 300  # 1.5 s of load at 200 events/s


@pytest.fixture
def outage_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A new 3-partition topic, deleted by an admin client made after the outage (``fresh_topic``'s,
    made before it, may not reconnect to the restarted broker: NodeNotReadyError at teardown)."""
    name = f"loadtest-{uuid.uuid4().hex[:10]}"
    _admin_call(kafka_bootstrap, lambda admin: admin.create_topics(
        [NewTopic(name, num_partitions=3, replication_factor=1)], timeout_ms=10000))
    _wait_for_leaders(kafka_bootstrap, name, 3)
    yield name
    _admin_call(kafka_bootstrap, lambda admin: admin.delete_topics([name], timeout_ms=10000))


def _admin_call(bootstrap: str, call: Any, attempts: int = 5) -> None:
    for attempt in range(attempts):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000, client_id="tests-load-admin")
        try:
            call(admin)
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)
        finally:
            admin.close()


def _acked(handle: LoadHandle) -> int:
    """Acknowledged events in the ledger so far (lines of the acked files; the writer appends whole lines)."""
    return sum(f.read_bytes().count(b"\n") for f in Path(str(handle.ledger_dir)).glob("acked-*.jsonl"))


def _log_tail(handle: LoadHandle, lines: int = 30) -> str:
    """The end of locust.log without kafka-python's connection noise (one line per refused connect)."""
    text = (Path(handle.run_dir) / "locust.log").read_text(errors="replace")
    kept = [line for line in text.splitlines() if "/kafka.net." not in line and "/kafka.cluster:" not in line]
    return "\n".join(kept[-lines:])


def test_load_resumes_after_the_only_broker_was_down_for_30_s(
        stack: LocalStack, kafka_bootstrap: str, outage_topic: str, tmp_path: Path) -> None:
    topic = outage_topic
    config: dict[str, Any] = {
        "stack_port_base": stack.endpoints.port_base, "stack_data_dir": str(stack.data_dir),
        "fault_state_dir": str(tmp_path / "journal"), "run_id": f"test-{uuid.uuid4().hex[:8]}",
    }
    handle = start_load(kafka_bootstrap, "steady", rate=200, duration=240, seed=31, topic=topic,
                        run_dir=str(tmp_path / "run"))
    timeline: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 30
        while _acked(handle) < 500:  # the load runs and is acknowledged before the fault
            assert time.monotonic() < deadline, f"ledger did not fill within 30 s:\n{_log_tail(handle)}"
            assert handle.is_running(), _log_tail(handle)
            time.sleep(0.2)
        timeline["acked_before"] = _acked(handle)

        t_stop = time.monotonic()
        kafka_broker.stop_kafka_broker(duration=OUTAGE_S + 30, configuration=config)  # the timer is a backstop
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_stop)))
        kafka_broker.start_kafka_broker(configuration=config)  # waits until RUNNING and the listener answers
        t_back = time.monotonic()
        timeline["outage_s"] = t_back - t_stop
        timeline["acked_when_back"] = back = _acked(handle)

        while _acked(handle) < back + RESUMED_EVENTS and time.monotonic() - t_back < RESUME_WITHIN_S:
            assert handle.is_running(), _log_tail(handle)
            time.sleep(0.5)
        timeline["acked_after"] = _acked(handle)
        timeline["waited_s"] = time.monotonic() - t_back
        result = stop_load(handle, timeout=30)
    finally:
        stop_quietly(handle)
        leftovers = [r for r in cleanup(tmp_path / "journal") if not r.ok]
        kafka_broker.start_kafka_broker(configuration=config)  # idempotent: the broker is up for later tests
    assert not leftovers, leftovers

    assert timeline["acked_after"] >= timeline["acked_when_back"] + RESUMED_EVENTS, (
        f"no load acknowledged within {RESUME_WITHIN_S:.0f} s of the broker's return: {timeline}\n"
        f"{_log_tail(handle)}")
    ledger = result.ledger
    assert ledger is not None, result.ledger_error
    assert not ledger.duplicates and ledger.torn_lines == 0
    # Every acknowledged event is in Kafka where the broker said it is.
    assert_ledger_in_kafka(ledger, kafka_bootstrap, topic)
