"""The consumer-lag exporter as a stack component (see ``stack/kafka_lag_exporter.py``)."""

from __future__ import annotations

import sys

import requests

from stack.components.base import Component
from stack.context import StackContext
from stack.endpoints import CONSUMER_GROUP
from stack.errors import ComponentError


def lag_exporter(ctx: StackContext, bootstrap: str) -> list[Component]:
    """One exporter reading the lag of the audit service's group from Kafka at ``bootstrap`` (directly, not
    via the proxy)."""
    port = ctx.endpoints.port("lag_exporter")
    url = f"http://127.0.0.1:{port}/metrics"

    def probe(c: StackContext) -> str:
        requests.get(url, timeout=2).raise_for_status()
        return "serving /metrics"

    def health(c: StackContext) -> str:
        text = requests.get(url, timeout=2).text
        for line in text.splitlines():
            if line.startswith("kafka_consumergroup_lag_sum{"):
                return f"lag {float(line.rsplit(' ', 1)[1]):.0f}"
        raise ComponentError("lag-exporter", f"no fresh kafka_consumergroup_lag_sum at {url}: Kafka not readable")

    return [Component(
        name="lag-exporter",
        command=[sys.executable, "-m", "stack.kafka_lag_exporter", "--bootstrap", bootstrap,
                 "--group", CONSUMER_GROUP, "--topic", ctx.topic, "--port", str(port), "--interval", "0.5"],
        ports=["lag_exporter"],
        probe=probe,
        health=health,
        group="exporters",
        startup_timeout=30,
        metrics=f"127.0.0.1:{port}",
        endpoint=url,
    )]
