"""The dead-letter producer writes again after a Kafka outage longer than its delivery timeout.

kafka-python 3's idempotent producer wedges for good once a batch it had sent expires (see
loadtests/producer.py): a replica whose dead-letter producer wedged would retry one poison
record forever and stop its partitions. The sink must come back with Kafka.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from service_harness import Harness, wait_until

from faults import network_partition
from faults.cleanup import cleanup
from sqlaudit.sinks import SinkError
from sqlaudit.sinks.dlq import DeadLetter, DeadLetterSink

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.extended]


def _letter(n: int) -> DeadLetter:
    return DeadLetter(topic="test-dlq-outage", partition=0, offset=n, key=b"k", value=b"{not json", reason="test")


def test_dead_letter_sink_recovers_after_an_outage_longer_than_its_delivery_timeout(
        service: Harness, tmp_path: Path) -> None:
    stack = service.stack
    cfg: dict[str, Any] = {"stack_port_base": stack.endpoints.port_base, "stack_data_dir": str(stack.data_dir),
                           "fault_state_dir": str(tmp_path / "faults"), "heartbeat_timeout": 60}
    # Through the service's own Kafka edge, as a replica would.
    sink = DeadLetterSink(stack.endpoints.kafka_bootstrap_service, stack.ctx.dlq_topic, "test-dlq", timeout_s=2.0)
    try:
        sink.write([_letter(0)])  # connected, metadata known
        network_partition.partition_network("kafka", mode="blackhole", duration=30, configuration=cfg)
        try:
            with pytest.raises(SinkError):
                sink.write([_letter(1)])  # sent into the black hole: expires after the delivery timeout
            time.sleep(6)  # well past the 4 s delivery timeout of what was in flight
        finally:
            network_partition.remove_partition("kafka", configuration=cfg)
            cleanup(tmp_path / "faults")

        def writes() -> bool:
            try:
                sink.write([_letter(2)])
                return True
            except SinkError:
                return False
        wait_until("a dead letter acknowledged after the partition healed", writes, timeout=40, interval=1)
    finally:
        sink.close()
    service.wait_all_ready()
