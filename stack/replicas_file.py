"""The pod-state exporter's replicas file: ``{pod: readiness URL}`` as JSON, written at ``up`` and by a scale.

A module of its own, importing nothing of the stack: the exporter program (:mod:`stack.pod_state_exporter`)
reads it, its component (:mod:`stack.components.pod_state_exporter`) and :mod:`stack.scale` write it, and
neither may import the other's side (the exporter program imports the supervisor client, which imports the
components).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["read_replicas_file", "write_replicas_file"]


def read_replicas_file(path: Path) -> dict[str, str] | None:
    """The ``{pod: readiness URL}`` of a replicas file, or ``None`` when it is missing or not such an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        return None
    return data


def write_replicas_file(path: Path, replicas: dict[str, str]) -> None:
    """Write the replicas file atomically (the exporter never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(replicas, indent=2))
    tmp.replace(path)
