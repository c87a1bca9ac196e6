"""Shared shape of the toxic-based faults (latency, loss): add named toxics, remove them by prefix.

Arguments arrive checked by the public activity (:mod:`faults.arguments`); what is checked here
needs the running stack: the edge's proxies exist on this profile and carry no toxic of ours yet.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed

from faults.local.processes import Programs
from faults.local.proxies import Toxiproxy, conflicting
from target.settings import TargetSettings
from target.topology import streams


def add(settings: TargetSettings, edge: str, prefix: str, kind: str, stream: str, attributes: dict[str, Any],
        toxicity: float, what: str) -> dict[str, Any]:
    """Add toxic ``kind`` named ``<prefix>-<stream>`` on each stream of every proxy of ``edge``;
    refuses (changing nothing) if one of them already has one."""
    chosen = streams(stream)
    tp = Toxiproxy(settings)
    members = tp.members(edge, what)
    present = {name: conflicting(proxy, prefix) for name, proxy in members.items() if conflicting(proxy, prefix)}
    if present:
        raise ActivityFailed(f"{what}: toxiproxy {tp.url} already has {present}; remove it first")
    names = [f"{prefix}-{s}" for s in chosen]
    plan = (f"add {kind} toxics {names} ({attributes}, toxicity {toxicity:g}) to proxies {', '.join(members)} "
            f"at {tp.url}")
    if settings.dry_run:
        return {"would": plan, "edge": edge, "proxies": list(members)}
    for proxy_name in members:
        for name, s in zip(names, chosen, strict=True):
            tp.add_toxic(proxy_name, name, kind, s, attributes, toxicity, what)
    return {"edge": edge, "proxies": list(members), "toxiproxy": tp.url, "toxics": names, "changed": plan}


def remove(settings: TargetSettings, edge: str, prefix: str, what: str) -> dict[str, Any]:
    """Remove every toxic named ``<prefix>-*`` from every proxy of ``edge``; none there is success."""
    if not Programs(settings).supervisord_running():
        return {"edge": edge, "changed": "stack not running: nothing to undo", "would": "nothing"}
    tp = Toxiproxy(settings)
    present = {name: conflicting(proxy, prefix) for name, proxy in tp.members(edge, what).items()}
    if settings.dry_run:
        return {"would": f"remove toxics {present} at {tp.url}", "edge": edge}
    removed = [f"{proxy_name}:{name}" for proxy_name, names in present.items() for name in names
               if tp.remove_toxic(proxy_name, name, what)]
    return {"edge": edge, "proxies": list(present), "toxiproxy": tp.url,
            "changed": f"removed {', '.join(removed)}" if removed else "already gone"}
