"""Short experiments for the live tests of issue 17, derived from the catalogue's so they stay in step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def _load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "experiments" / f"{name}.yaml").read_text()))


def _write(doc: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def partition_experiment(directory: Path, *, judge_availability: bool, partition_s: int = 60, after_s: int = 45,
                         load_s: int = 70) -> Path:
    """The ClickHouse partition with a long blackhole; with ``judge_availability`` the experiment promises to
    keep availability (so the safeguard guards it) although the partition takes every replica out."""
    doc = _load("clickhouse_partition")
    ext = doc["extensions"][0]
    ext["slos"] = ["rto_data_flow", "rpo", "data_loss", *(["availability"] if judge_availability else [])]
    ext["drain_timeout_s"] = 120
    doc["method"][0]["pauses"] = {"after": 10}
    doc["method"][1]["provider"]["arguments"]["duration"] = partition_s
    doc["method"][1]["pauses"] = {"after": after_s}
    doc["method"] = [a for a in doc["method"] if a.get("type") != "probe"]
    doc["configuration"]["load_duration"]["default"] = str(load_s)
    name = "availability_breach" if judge_availability else "long_partition"
    return _write(doc, directory / f"{name}.yaml")


def regression_experiment(directory: Path, *, slow_ms: int = 0) -> Path:
    """One replica SIGKILLed under light load, RTO of the replicas judged; ``slow_ms`` adds a latency toxic of that
    many ms each way on the service's Kafka edge from before the kill until the end (the "slower release").

    The file is always ``regression_probe.yaml``: the slowed and the unchanged variants are the same experiment
    to the history, as two releases of the service would be.
    """
    doc = _load("pod_failure")
    ext = doc["extensions"][0]
    ext["slos"] = ["rto_replicas_ready", "data_loss"]
    ext["drain_timeout_s"] = 90
    doc["title"] = "Regression probe: one replica killed, recovery timed"
    start, kill = doc["method"][0], doc["method"][1]
    start["pauses"] = {"after": 8}
    kill["pauses"] = {"after": 40}
    method = [start]
    if slow_ms:
        method.append({"type": "action", "name": "slow-kafka-edge", "provider": {
            "type": "python", "module": "faults.network_latency", "func": "add_latency",
            "arguments": {"edge": "kafka", "latency_ms": slow_ms, "stream": "both", "duration": 75}}})
        doc["rollbacks"].insert(0, {"type": "action", "name": "heal-kafka-edge", "provider": {
            "type": "python", "module": "faults.network_latency", "func": "remove_latency",
            "arguments": {"edge": "kafka"}}})
    method += [kill, doc["method"][-1]]
    doc["method"] = method
    doc["configuration"]["load_duration"]["default"] = "55"
    doc["configuration"]["load_rate"]["default"] = "100"
    return _write(doc, directory / "regression_probe.yaml")
