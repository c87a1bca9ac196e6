"""Shared shape of the toxic-based faults (latency, loss) on the local stack's toxiproxy
(:func:`faults.toxiproxy.add_toxics` / :func:`~faults.toxiproxy.remove_toxics` with its one server).

Arguments arrive checked by the public activity (:mod:`faults.arguments`); what is checked here
needs the running stack: the edge's proxies exist on this profile and carry no toxic of ours yet.
"""

from typing import Any

from faults.local.processes import Programs
from faults.local.proxies import Toxiproxy
from faults.toxiproxy import add_toxics, remove_toxics
from target.settings import TargetSettings


def add(settings: TargetSettings, edge: str, prefix: str, kind: str, stream: str, attributes: dict[str, Any],
        toxicity: float, what: str) -> dict[str, Any]:
    """Add toxic ``kind`` named ``<prefix>-<stream>`` on each stream of every proxy of ``edge``;
    refuses (changing nothing) if one of them already has one."""
    return add_toxics([Toxiproxy(settings)], edge, prefix, kind, stream, attributes, toxicity, what,
                      settings.dry_run)


def remove(settings: TargetSettings, edge: str, prefix: str, what: str) -> dict[str, Any]:
    """Remove every toxic named ``<prefix>-*`` from every proxy of ``edge``; none there is success."""
    if not Programs(settings).supervisord_running():
        return {"edge": edge, "changed": "stack not running: nothing to undo", "would": "nothing"}
    return remove_toxics([Toxiproxy(settings)], edge, prefix, what, settings.dry_run)
