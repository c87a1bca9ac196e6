"""Consumer-lag exporter: Kafka's view of the audit service's lag, for Prometheus.

Samples :class:`clients.kafka_lag.LagReader` every ``--interval`` seconds in a thread and
serves the latest sample on ``/metrics``. Metric names and labels are those of the
widely deployed kafka_exporter, so the same PromQL works in staging:

    kafka_consumergroup_lag{consumergroup,topic,partition}
    kafka_consumergroup_lag_sum{consumergroup,topic}
    kafka_consumergroup_current_offset{consumergroup,topic,partition}   (-1: never committed)
    kafka_topic_partition_current_offset{topic,partition}

plus the exporter's own health:

    sqlaudit_lag_exporter_last_success_timestamp_seconds
    sqlaudit_lag_exporter_sample_errors_total

When Kafka cannot be read, the lag series disappear (Prometheus marks them stale)
instead of showing a stale or zero lag: no data must never look healthy.

    python -m stack.kafka_lag_exporter --bootstrap 127.0.0.1:19000 --port 19012
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from collections.abc import Iterator

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from clients.kafka import KafkaAuth
from clients.kafka_lag import LagReader, LagSnapshot

ENV_PREFIX = "LAG_EXPORTER_"

logger = logging.getLogger(__name__)


class LagCollector(Collector):
    """Serves the latest successful sample while it is fresh (younger than ``max_age_s``)."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self.snapshot: LagSnapshot | None = None
        self.errors = 0
        self._lock = threading.Lock()

    def update(self, snap: LagSnapshot | None) -> None:
        with self._lock:
            if snap is None:
                self.errors += 1
            else:
                self.snapshot = snap

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:
            snap, errors = self.snapshot, self.errors
        errs = CounterMetricFamily("sqlaudit_lag_exporter_sample_errors", "Failed lag samples.")
        errs.add_metric([], errors)
        yield errs
        last = GaugeMetricFamily("sqlaudit_lag_exporter_last_success_timestamp_seconds",
                                 "When lag was last read from Kafka.")
        last.add_metric([], snap.taken_at if snap else 0.0)
        yield last
        if snap is None or time.time() - snap.taken_at > self.max_age_s:
            return  # stale: export nothing rather than an old number
        labels = ["consumergroup", "topic", "partition"]
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "Consumer group lag per partition.", labels=labels)
        cur = GaugeMetricFamily("kafka_consumergroup_current_offset", "Committed offset (-1: none).", labels=labels)
        end = GaugeMetricFamily("kafka_topic_partition_current_offset", "End offset of the partition.",
                                labels=["topic", "partition"])
        for p, value in snap.lag.items():
            key = [snap.group, snap.topic, str(p)]
            lag.add_metric(key, value)
            committed = snap.committed.get(p)
            cur.add_metric(key, -1 if committed is None else committed)
            end.add_metric([snap.topic, str(p)], snap.end_offsets[p])
        total = GaugeMetricFamily("kafka_consumergroup_lag_sum", "Consumer group lag, all partitions.",
                                  labels=["consumergroup", "topic"])
        total.add_metric([snap.group, snap.topic], snap.total)
        yield from (lag, cur, end, total)


def run(bootstrap: str, group: str, topic: str, port: int, interval: float, auth: KafkaAuth | None = None) -> None:
    collector = LagCollector(max_age_s=max(3 * interval, 2.0))
    REGISTRY.register(collector)
    start_http_server(port, addr="127.0.0.1")
    logger.info("lag exporter on 127.0.0.1:%s for group %s topic %s via %s", port, group, topic, bootstrap)
    reader: LagReader | None = None
    while True:
        t0 = time.monotonic()
        try:
            if reader is None:
                reader = LagReader(bootstrap, group, topic, timeout_s=max(interval * 4, 2.0), auth=auth)
            collector.update(reader.read())
        except Exception as exc:  # keep sampling: Kafka may come back
            logger.warning("lag sample failed: %s: %s", type(exc).__name__, exc)
            collector.update(None)
            if reader is not None:
                reader.close()
                reader = None
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m stack.kafka_lag_exporter", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers (direct, not proxied)")
    ap.add_argument("--group", default="sql-audit-service")
    ap.add_argument("--topic", default="sql-audit-events")
    ap.add_argument("--port", type=int, required=True, help="port of /metrics on 127.0.0.1")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between samples (default 0.5)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    # The login comes from LAG_EXPORTER_KAFKA_* variables (a secure stack's), never the command line.
    run(args.bootstrap, args.group, args.topic, args.port, args.interval,
        KafkaAuth.from_environment(os.environ, ENV_PREFIX))


if __name__ == "__main__":
    main()
