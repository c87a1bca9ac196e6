"""Poison records: invalid messages on the events topic, among the valid load.

The operations guide's dead-letter topic and its HighProcessingErrorRate alert exist for records no
consumer can read. ``inject_poison`` sends ``count`` of them at ``rate`` per second
(:mod:`faults.poison_records`: three kinds, unique keys, every acknowledged one listed in
``<load_dir>/poison.jsonl``); the service must dead-letter each one, by key, and keep the valid events
flowing (judged by ``poison_dead_lettered``, ``data_loss`` and ``rto_data_flow``). The records stay in
the topic, as real poison would: ``stop_poison`` has nothing to undo and only closes the fault window.
Both targets send through Kafka's own protocol (``kafka_bootstrap`` of the target).
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["inject_poison", "stop_poison"]


def inject_poison(count: int = 300, rate: float = 30.0, configuration: Configuration | None = None,
                  secrets: Secrets | None = None) -> dict[str, Any]:
    """Send ``count`` poison records at ``rate`` per second; blocks for ``count / rate`` seconds.

    Returns ``fault_id``, ``run_id``, ``journal`` and ``details`` (sent, acknowledged, the file listing
    them); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: a count below 1 or a rate not above 0, Kafka unreachable or its topic missing
            (nothing sent), or not one record acknowledged.
    """
    fault = "inject_poison"
    count = check.integer(fault, "count", count, 1, 100_000)
    rate = check.number(fault, "rate", rate)
    if rate <= 0:
        raise ActivityFailed(f"{fault}: rate={rate!r}: expected a number > 0 (records per second)")
    return engine.inject(__name__, "inject_poison", {"count": count, "rate": rate}, "stop_poison", {}, None,
                         configuration, secrets, instant=False)


def stop_poison(configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Close the poison fault's window; idempotent. The records stay in the topic (nothing to undo).

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: the journal could not be updated.
    """
    return engine.remove(__name__, "stop_poison", {}, configuration, secrets)
