"""Shared shape of the toxic-based faults (latency, loss): add named toxics, remove them by prefix."""

from typing import Any

from chaoslib.exceptions import ActivityFailed

from faults.local.processes import Programs
from faults.local.proxies import Toxiproxy, check_edge, conflicting, streams
from faults.settings import Settings


def add(settings: Settings, edge: str, prefix: str, kind: str, stream: str, attributes: dict[str, Any],
        toxicity: float, what: str) -> dict[str, Any]:
    """Add toxic ``kind`` named ``<prefix>-<stream>`` on each stream; refuses if one is already there."""
    check_edge(edge, what)
    chosen = streams(stream, what)
    tp = Toxiproxy(settings)
    proxy = tp.proxy(edge, what)
    present = conflicting(proxy, prefix)
    if present:
        raise ActivityFailed(f"{what}: proxy {edge} at toxiproxy {tp.url} already has {present}; remove it first")
    names = [f"{prefix}-{s}" for s in chosen]
    plan = f"add {kind} toxics {names} ({attributes}, toxicity {toxicity:g}) to proxy {edge} at {tp.url}"
    if settings.dry_run:
        return {"would": plan, "edge": edge}
    for name, s in zip(names, chosen, strict=True):
        tp.add_toxic(edge, name, kind, s, attributes, toxicity, what)
    return {"edge": edge, "toxiproxy": tp.url, "toxics": names, "changed": plan}


def remove(settings: Settings, edge: str, prefix: str, what: str) -> dict[str, Any]:
    """Remove every toxic named ``<prefix>-*`` from ``edge``; none there is success."""
    check_edge(edge, what)
    if not Programs(settings).supervisord_running():
        return {"edge": edge, "changed": "stack not running: nothing to undo", "would": "nothing"}
    tp = Toxiproxy(settings)
    present = conflicting(tp.proxy(edge, what), prefix)
    if settings.dry_run:
        return {"would": f"remove toxics {present} from proxy {edge} at {tp.url}", "edge": edge}
    removed = [name for name in present if tp.remove_toxic(edge, name, what)]
    return {"edge": edge, "toxiproxy": tp.url,
            "changed": f"removed {', '.join(removed)}" if removed else "already gone"}
