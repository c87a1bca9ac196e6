"""Poison records: messages on the events topic that no version of the event contract can read.

The operations guide's error-rate alert (HighProcessingErrorRate) and its dead-letter topic exist for
them; the valid load never sends one. Shared by both targets' backends of :mod:`faults.poison` (the
records go through Kafka's own protocol, wherever Kafka runs). :func:`produce_poison` sends ``count``
of them at ``rate`` per second, among the valid load, and writes every one the broker acknowledged to ``poison.jsonl``
(key, kind, partition, offset, acknowledged time) in the run's load directory, beside the ledger of the
valid events: what the judge then looks for in the dead-letter topic, record by record (:mod:`probes.poison`).

Each record's key is unique (``poison-<run>-<n>``): both reference services copy an invalid record's
key and value into the dead-letter topic unchanged (``docs/events.md``), so the key is how a letter is
matched to what was sent, whatever headers a service adds. Three kinds, in turn, one per way a
consumer fails to decode:

* ``not_json``: bytes that are not JSON;
* ``not_object``: JSON that is not an object (an array);
* ``invalid_field``: a JSON object whose fields break the contract (wrong types, fields missing).

Blocking and bounded (``count / rate`` seconds plus the flush): nothing is left running when it returns
or is interrupted, so there is nothing to roll back; the records stay in the topic, as real poison would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kafka import KafkaConsumer, KafkaProducer

from clients.kafka import KafkaAuth
from stack.paths import REPO_ROOT
from target.settings import resolve

__all__ = ["KINDS", "POISON_FILE", "inject_poison", "poison_value", "produce_poison", "read_poison", "stop_poison"]

POISON_FILE = "poison.jsonl"
KINDS = ("not_json", "not_object", "invalid_field")


def poison_value(kind: str, n: int) -> bytes:
    """The record value of poison record ``n`` of ``kind``."""
    if kind == "not_json":
        return f"<poison {n}> this is not JSON".encode()
    if kind == "not_object":
        return json.dumps([f"poison-{n}", n]).encode()
    if kind == "invalid_field":
        return json.dumps({"event_id": f"poison-{n}", "duration_ms": "slow", "rows_affected": -1}).encode()
    raise ValueError(f"unknown poison kind {kind!r} (one of {', '.join(KINDS)})")


def produce_poison(bootstrap: str, topic: str, count: int, rate: float, out_dir: Path, run_id: str,
                   auth: KafkaAuth | None = None, timeout_s: float = 30.0) -> dict[str, Any]:
    """Send ``count`` poison records at ``rate`` per second; returns what was sent and acknowledged.

    Raises:
        ValueError: ``count`` < 1 or ``rate`` <= 0 (before anything is sent).
    """
    if count < 1:
        raise ValueError(f"count: must be >= 1, got {count}")
    if rate <= 0:
        raise ValueError(f"rate: must be > 0, got {rate}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / POISON_FILE
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id=f"sqlaudit-poison-{run_id}", acks="all",
                             linger_ms=5, request_timeout_ms=int(timeout_s * 1000),
                             **(auth or KafkaAuth()).client_kwargs())
    acked: list[dict[str, Any]] = []
    failed: list[str] = []

    def on_ack(key: str, kind: str) -> Any:
        def done(meta: Any) -> None:
            acked.append({"key": key, "kind": kind, "topic": meta.topic, "partition": meta.partition,
                          "offset": meta.offset, "acked_at_ms": int(time.time() * 1000)})
        return done

    start = time.monotonic()
    try:
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            kind = KINDS[n % len(KINDS)]
            key = f"poison-{run_id}-{n}"
            future = producer.send(topic, key=key.encode(), value=poison_value(kind, n))
            future.add_callback(on_ack(key, kind))
            future.add_errback(lambda exc, key=key: failed.append(f"{key}: {exc}"))
        producer.flush(timeout=timeout_s)
    finally:
        producer.close(timeout=5)
        with path.open("w") as fh:
            for rec in sorted(acked, key=lambda r: r["key"]):
                fh.write(json.dumps(rec) + "\n")
    return {"sent": count, "acked": len(acked), "failed": len(failed), "failures": failed[:10],
            "seconds": round(time.monotonic() - start, 2), "file": str(path)}


def read_poison(path: Path) -> list[dict[str, Any]]:
    """The acknowledged poison records of a run (``[]`` when the file is absent)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _check_topic(bootstrap: str, topic: str, auth: KafkaAuth) -> int:
    """The number of partitions of ``topic``; ``ActivityFailed`` naming Kafka when unreachable or absent."""
    from clients.kafka import check_login

    try:
        check_login(bootstrap, auth)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="sqlaudit-poison-check", group_id=None,
                                 request_timeout_ms=11_000, **auth.client_kwargs())
    except Exception as exc:
        raise ActivityFailed(f"inject_poison: Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from None
    try:
        parts = consumer.partitions_for_topic(topic)
    finally:
        consumer.close()
    if not parts:
        raise ActivityFailed(f"inject_poison: topic {topic!r} not found at {bootstrap} (contract.topic)")
    return len(parts)


def inject_poison(count: int = 300, rate: float = 30.0, configuration: Configuration | None = None,
                  secrets: Secrets | None = None) -> dict[str, Any]:
    """The backend of :func:`faults.poison.inject_poison`, the same on every target (Kafka's protocol)."""
    settings = resolve(configuration)
    bootstrap = settings.require("kafka_bootstrap", "inject poison")
    topic, auth = settings.contract.topic, settings.kafka_auth()
    if settings.dry_run:  # the engine plans every fault first, so a real call has already passed this check
        partitions = _check_topic(bootstrap, topic, auth)
        return {"would": f"send {count} poison records ({', '.join(KINDS)}) at {rate:g}/s into {topic!r} "
                         f"({partitions} partitions) at {bootstrap}"}
    load_dir = settings.load_dir or REPO_ROOT / "reports" / "adhoc" / settings.run_id / "load"
    out = produce_poison(bootstrap, topic, count, rate, load_dir, settings.run_id, auth=auth)
    if not out["acked"]:
        raise ActivityFailed(f"inject_poison: none of {out['sent']} records was acknowledged by Kafka at "
                             f"{bootstrap}: {out['failures']}")
    return out


def stop_poison(configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Nothing to undo: the records stay in the topic, as real poison would."""
    return {"changed": "nothing to undo: poison records stay in the topic"}
