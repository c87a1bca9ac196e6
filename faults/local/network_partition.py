"""Local backend of :mod:`faults.network_partition`: toxiproxy toxics or a disabled proxy."""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.local.processes import Programs
from faults.local.proxies import STREAMS, Toxiproxy, check_edge, conflicting
from faults.settings import Settings

PREFIX = "chaos-partition"
MODES = {"blackhole": "timeout", "reset": "reset_peer", "refuse": None}


def partition_network(edge: str, mode: str = "blackhole", duration: float | None = None,
                      configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_partition.partition_network`."""
    settings = Settings.from_configuration(configuration)
    what = f"partition audit-service<->{edge}"
    check_edge(edge, what)
    if mode not in MODES:
        raise ActivityFailed(f"{what}: unknown mode {mode!r}; modes: {', '.join(MODES)}")
    tp = Toxiproxy(settings)
    proxy = tp.proxy(edge, what)
    if not proxy["enabled"] or conflicting(proxy, PREFIX):
        raise ActivityFailed(f"{what}: already partitioned (proxy enabled={proxy['enabled']}, toxics "
                             f"{conflicting(proxy, PREFIX)}) at toxiproxy {tp.url}; remove_partition first")
    if mode == "refuse":
        plan = f"disable toxiproxy proxy {edge} at {tp.url}"
    else:
        plan = f"add {MODES[mode]} toxics {PREFIX}-upstream/-downstream to proxy {edge} at {tp.url}"
    if settings.dry_run:
        return {"would": plan, "edge": edge, "mode": mode}
    toxics = []
    if mode == "refuse":
        tp.set_enabled(edge, False, what)
    else:
        for stream in STREAMS:
            name = f"{PREFIX}-{stream}"
            tp.add_toxic(edge, name, str(MODES[mode]), stream, {"timeout": 0}, 1.0, what)
            toxics.append(name)
    return {"edge": edge, "mode": mode, "toxiproxy": tp.url, "toxics": toxics, "changed": plan}


def remove_partition(edge: str, configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_partition.remove_partition`."""
    settings = Settings.from_configuration(configuration)
    what = f"heal partition audit-service<->{edge}"
    check_edge(edge, what)
    if not Programs(settings).supervisord_running():
        return {"edge": edge, "changed": "stack not running: nothing to undo", "would": "nothing"}
    tp = Toxiproxy(settings)
    proxy = tp.proxy(edge, what)
    toxics = conflicting(proxy, PREFIX)
    if settings.dry_run:
        return {"would": f"remove toxics {toxics}" + ("" if proxy["enabled"] else f", enable proxy {edge}"),
                "edge": edge}
    removed = [name for name in toxics if tp.remove_toxic(edge, name, what)]
    changed = [f"removed {', '.join(removed)}"] if removed else []
    if not proxy["enabled"]:
        tp.set_enabled(edge, True, what)
        changed.append(f"enabled proxy {edge}")
    return {"edge": edge, "toxiproxy": tp.url, "changed": "; ".join(changed) or "already healed"}
