"""Local backend of :mod:`faults.network_partition`: toxiproxy toxics or a disabled proxy."""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.local.processes import Programs
from faults.local.proxies import Toxiproxy, conflicting
from target.settings import resolve
from target.topology import STREAMS

PREFIX = "chaos-partition"
TOXICS = {"blackhole": "timeout", "reset": "reset_peer"}
"""The toxic of each mode of :data:`faults.network_partition.MODES`; ``refuse`` disables the proxy instead."""


def partition_network(edge: str, mode: str = "blackhole", duration: float | None = None,
                      configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_partition.partition_network`."""
    settings = resolve(configuration)
    what = f"partition audit-service<->{edge}"
    tp = Toxiproxy(settings)
    members = tp.members(edge, what)
    taken = {name: {"enabled": p["enabled"], "toxics": conflicting(p, PREFIX)} for name, p in members.items()
             if not p["enabled"] or conflicting(p, PREFIX)}
    if taken:
        raise ActivityFailed(f"{what}: already partitioned ({taken}) at toxiproxy {tp.url}; remove_partition first")
    names = ", ".join(members)
    if mode == "refuse":
        plan = f"disable toxiproxy proxies {names} at {tp.url}"
    else:
        plan = f"add {TOXICS[mode]} toxics {PREFIX}-upstream/-downstream to proxies {names} at {tp.url}"
    if settings.dry_run:
        return {"would": plan, "edge": edge, "mode": mode, "proxies": list(members)}
    toxics = [f"{PREFIX}-{stream}" for stream in STREAMS] if mode != "refuse" else []
    for proxy_name in members:
        if mode == "refuse":
            tp.set_enabled(proxy_name, False, what)
        else:
            for stream, name in zip(STREAMS, toxics, strict=True):
                tp.add_toxic(proxy_name, name, TOXICS[mode], stream, {"timeout": 0}, 1.0, what)
    return {"edge": edge, "mode": mode, "proxies": list(members), "toxiproxy": tp.url, "toxics": toxics,
            "changed": plan}


def remove_partition(edge: str, configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_partition.remove_partition`."""
    settings = resolve(configuration)
    what = f"heal partition audit-service<->{edge}"
    if not Programs(settings).supervisord_running():
        return {"edge": edge, "changed": "stack not running: nothing to undo", "would": "nothing"}
    tp = Toxiproxy(settings)
    members = tp.members(edge, what)
    if settings.dry_run:
        plan = {name: {"remove": conflicting(p, PREFIX), "enable": not p["enabled"]} for name, p in members.items()}
        return {"would": f"at {tp.url}: {plan}", "edge": edge}
    changed = []
    for proxy_name, proxy in members.items():
        removed = [name for name in conflicting(proxy, PREFIX) if tp.remove_toxic(proxy_name, name, what)]
        if removed:
            changed.append(f"removed {', '.join(removed)} from {proxy_name}")
        if not proxy["enabled"]:
            tp.set_enabled(proxy_name, True, what)
            changed.append(f"enabled proxy {proxy_name}")
    return {"edge": edge, "proxies": list(members), "toxiproxy": tp.url,
            "changed": "; ".join(changed) or "already healed"}
