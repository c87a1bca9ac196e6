"""Helpers shared by the pod-level backends (replicas, process, kafka_broker, clickhouse)."""

import re
from typing import Any

from chaoslib.exceptions import ActivityFailed

_ORDINAL = re.compile(r"-(\d+)$")


def no_duration(duration: float | None, what: str) -> None:
    """Kubernetes controllers recreate a deleted pod at once: a down-time ``duration`` cannot be honoured."""
    if duration is not None:
        raise ActivityFailed(f"{what}: duration is not supported on kubernetes (the pod's controller recreates "
                             "it at once); leave duration null")


def ordinal(pod: Any) -> int | None:
    """The ordinal at the end of a pod's name (``kafka-2`` -> 2, as StatefulSets name pods), ``None`` without one."""
    m = _ORDINAL.search(pod.metadata.name)
    return int(m.group(1)) if m else None


def with_ordinal(pods: list[Any], index: int, kind: str, where: str, what: str) -> Any:
    """The one pod among ``pods`` whose ordinal is ``index``; ``ActivityFailed`` naming ``kind`` if none or several."""
    matches = [p for p in pods if ordinal(p) == index]
    if not matches:
        raise ActivityFailed(f"{what}: no {kind} pod with ordinal {index} ({kind}s: "
                             f"{sorted(p.metadata.name for p in pods)}; {where})")
    if len(matches) > 1:
        raise ActivityFailed(f"{what}: ordinal {index} is ambiguous ({sorted(p.metadata.name for p in matches)}); "
                             f"narrow the selector to one set of {kind}s ({where})")
    return matches[0]
