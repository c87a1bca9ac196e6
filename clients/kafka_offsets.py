"""A consumer group's committed offsets: read them at a backup, put them back after a restore.

Restoring the stores to a backup and setting the service's consumer group back to the offsets it had
committed when the backup was taken makes the service consume again every event the backup lacks
(the operations guide's "restore from backup + replay Kafka"; docs/backup.md). The same as
``kafka-consumer-groups.sh --describe`` and ``--reset-offsets --from-file ... --execute``, through
kafka-python's admin client so the suite needs no Kafka command-line tools.

``python -m clients.kafka_offsets save|reset`` runs it from a shell (docs/backup.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.structs import OffsetAndMetadata

__all__ = ["OffsetsError", "committed_offsets", "reset_offsets"]


class OffsetsError(RuntimeError):
    """Offsets could not be read or set; the message says which group, where and why."""


def _admin(bootstrap: str) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sqlaudit-backup-offsets",
                                request_timeout_ms=10_000)
    except Exception as exc:
        raise OffsetsError(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from None


def _partitions(admin: KafkaAdminClient, topic: str, bootstrap: str) -> list[int]:
    described = admin.describe_topics([topic])
    parts = sorted(int(p["partition_index"]) for t in described for p in t.get("partitions") or [])
    if not parts:
        raise OffsetsError(f"Kafka at {bootstrap}: topic {topic!r} has no partitions")
    return parts


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    """Partition -> the offset ``group`` has committed on ``topic`` (``None``: nothing committed yet).

    Raises:
        OffsetsError: Kafka unreachable, or the topic unknown.
    """
    admin = _admin(bootstrap)
    try:
        parts = _partitions(admin, topic, bootstrap)
        got = admin.list_group_offsets({group: [TopicPartition(topic, p) for p in parts]}).get(group, {})
    except OffsetsError:
        raise
    except Exception as exc:
        raise OffsetsError(f"Kafka at {bootstrap}: offsets of group {group!r} on {topic!r}: "
                           f"{type(exc).__name__}: {exc}") from None
    finally:
        admin.close()
    out: dict[int, int | None] = {}
    for p in parts:
        oam = got.get(TopicPartition(topic, p))
        out[p] = int(oam.offset) if oam is not None and oam.offset is not None and oam.offset >= 0 else None
    return out


def reset_offsets(bootstrap: str, group: str, topic: str, offsets: Mapping[int, int | None],
                  timeout_s: float = 60.0) -> dict[int, dict[str, int | None]]:
    """Set ``group``'s committed offsets on ``topic`` to ``offsets`` (``None``: the partition's earliest).

    The group must have no live member: Kafka refuses to move the offsets of a group that is consuming.
    Members that were just stopped may linger until their session times out, so the change is retried
    until ``timeout_s``.

    Returns:
        partition -> ``{"from": offset before, "to": offset set}``.

    Raises:
        OffsetsError: Kafka unreachable, or the group still had members after ``timeout_s``.
    """
    before = committed_offsets(bootstrap, group, topic)
    admin = _admin(bootstrap)
    deadline = time.monotonic() + timeout_s
    last = ""
    try:
        while True:
            try:
                explicit = {TopicPartition(topic, int(p)): OffsetAndMetadata(int(o), "", -1)
                            for p, o in offsets.items() if o is not None}
                earliest = {TopicPartition(topic, int(p)): OffsetSpec.EARLIEST
                            for p, o in offsets.items() if o is None}
                errors: dict[Any, Any] = {}
                if explicit:
                    errors.update(admin.alter_group_offsets(group, explicit))
                if earliest:
                    errors.update(admin.reset_group_offsets(group, earliest))
                # alter answers an error class per partition, reset a dict {"error": class, "offset": n}
                names = {tp.partition: getattr(e, "__name__", str(e)) for tp, err in errors.items()
                         for e in [err.get("error") if isinstance(err, dict) else err]}
                bad = {p: name for p, name in names.items() if name != "NoError"}
                if not bad:
                    break
                last = f"partition errors {bad}"
            except Exception as exc:  # the coordinator answers "group not empty" while members linger
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise OffsetsError(f"Kafka at {bootstrap}: could not reset group {group!r} on {topic!r} within "
                                   f"{timeout_s:.0f} s (it must have no live member): {last}")
            time.sleep(1.0)
    finally:
        admin.close()
    after = committed_offsets(bootstrap, group, topic)
    return {p: {"from": before.get(p), "to": after.get(p)} for p in sorted(offsets)}


def main(argv: list[str] | None = None) -> int:
    """``save BOOTSTRAP GROUP TOPIC FILE`` writes the committed offsets as JSON; ``reset BOOTSTRAP GROUP
    TOPIC FILE`` sets the group back to them (the group must be stopped)."""
    parser = argparse.ArgumentParser(prog="python -m clients.kafka_offsets", description=main.__doc__)
    parser.add_argument("command", choices=("save", "reset"))
    parser.add_argument("bootstrap")
    parser.add_argument("group")
    parser.add_argument("topic")
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "save":
            offsets = committed_offsets(args.bootstrap, args.group, args.topic)
            args.file.write_text(json.dumps({"group": args.group, "topic": args.topic, "taken_at_ms":
                                             int(time.time() * 1000), "offsets": offsets}, indent=2) + "\n")
            print(json.dumps(offsets))
        else:
            saved = json.loads(args.file.read_text())
            wanted = {int(p): (None if o is None else int(o)) for p, o in saved["offsets"].items()}
            print(json.dumps(reset_offsets(args.bootstrap, args.group, args.topic, wanted)))
    except (OffsetsError, OSError, KeyError, ValueError) as exc:
        print(f"kafka_offsets: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
