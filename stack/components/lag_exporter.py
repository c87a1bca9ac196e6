"""The consumer-lag exporter as a stack component (see ``stack/kafka_lag_exporter.py``)."""

from __future__ import annotations

import sys

from stack.components.base import Component, exporter_checks
from stack.context import StackContext
from stack.endpoints import CONSUMER_GROUP
from stack.kafka_lag_exporter import ENV_PREFIX
from stack.security import suite_kafka_auth


def lag_exporter(ctx: StackContext, bootstrap: str) -> list[Component]:
    """One exporter reading the lag of the audit service's group from Kafka at ``bootstrap`` (directly, not
    via the proxy)."""
    port = ctx.endpoints.port("lag_exporter")
    url = f"http://127.0.0.1:{port}/metrics"

    # No fresh lag when Kafka cannot be read: the exporter serves nothing rather than an old number.
    probe, health = exporter_checks("lag-exporter", url, "kafka_consumergroup_lag_sum", lambda v: f"lag {v:.0f}")

    return [Component(
        name="lag-exporter",
        command=[sys.executable, "-m", "stack.kafka_lag_exporter", "--bootstrap", bootstrap,
                 "--group", CONSUMER_GROUP, "--topic", ctx.topic, "--port", str(port), "--interval", "0.5"],
        ports=["lag_exporter"],
        environment=suite_kafka_auth(ctx).environment(ENV_PREFIX),  # a secure stack's login, not on argv
        probe=probe,
        health=health,
        group="exporters",
        startup_timeout=30,
        metrics=f"127.0.0.1:{port}",
        endpoint=url,
    )]
