"""toxiproxy's HTTP API (every request with a timeout), shared by the backends that put a toxic on an edge.

The local stack runs one toxiproxy in front of every store (:mod:`faults.local.proxies`); on a cluster the
service pods may run one beside the service (``k8s_toxiproxy_urls``, :mod:`faults.kubernetes.toxics`).
Either way a proxy is named after the edge it carries (``postgres``, ``clickhouse``, ``kafka_2``...), and
every toxic this library adds is named ``chaos-<fault>-<stream>``.
"""

import logging
from collections.abc import Sequence
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed

from target.topology import edge_members, streams

logger = logging.getLogger(__name__)

TIMEOUT = (2.0, 5.0)  # connect, read
CHAOS_PREFIX = "chaos-"
"""Every toxic this library adds is named ``chaos-<fault>-<stream>``."""


class ToxiproxyAPI:
    """Client of one toxiproxy server at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _send(self, method: str, path: str, what: str, json: dict[str, Any] | None = None) -> requests.Response:
        """One API request; 404 is returned to the caller, other errors raise ``ActivityFailed``."""
        try:
            resp = requests.request(method, f"{self.url}{path}", json=json, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise ActivityFailed(f"{what}: toxiproxy at {self.url}: {exc}") from exc
        if resp.status_code >= 400 and resp.status_code != 404:
            raise ActivityFailed(f"{what}: toxiproxy at {self.url}: {method} {path} -> HTTP {resp.status_code}: "
                                 f"{resp.text.strip()[:300]}")
        return resp

    def proxies(self, what: str) -> dict[str, dict[str, Any]]:
        """Every proxy of the server, by name."""
        resp = self._send("GET", "/proxies", what)
        return dict(resp.json()) if resp.status_code == 200 else {}

    def members(self, edge: str, what: str) -> dict[str, dict[str, Any]]:
        """Every proxy ``edge`` covers (:func:`target.topology.edge_members`), by name; none raises
        ``ActivityFailed`` (a member this stack's profile lacks, ``clickhouse_2`` on the minimal one)."""
        proxies = self.proxies(what)
        chosen = edge_members(edge, list(proxies))
        if not chosen:
            raise ActivityFailed(f"{what}: toxiproxy at {self.url} has no proxy for {edge!r} "
                                 f"(it has {', '.join(sorted(proxies)) or 'none'})")
        return {name: dict(proxies[name]) for name in chosen}

    def proxy(self, edge: str, what: str) -> dict[str, Any]:
        """The proxy of ``edge`` (``enabled``, ``toxics``...)."""
        resp = self._send("GET", f"/proxies/{edge}", what)
        if resp.status_code == 404:
            raise ActivityFailed(f"{what}: toxiproxy at {self.url} has no proxy {edge!r}")
        return dict(resp.json())

    def set_enabled(self, edge: str, enabled: bool, what: str) -> None:
        """Enable or disable the proxy of ``edge`` (disabled: listener closed, connections cut)."""
        resp = self._send("POST", f"/proxies/{edge}", what, json={"enabled": enabled})
        if resp.status_code == 404:
            raise ActivityFailed(f"{what}: toxiproxy at {self.url} has no proxy {edge!r}")
        logger.info("toxiproxy %s: proxy %s %s", self.url, edge, "enabled" if enabled else "DISABLED")

    def add_toxic(self, edge: str, name: str, kind: str, stream: str, attributes: dict[str, Any],
                  toxicity: float, what: str) -> None:
        """Add toxic ``name`` of type ``kind`` to ``stream`` of the proxy of ``edge``."""
        resp = self._send("POST", f"/proxies/{edge}/toxics", what,
                          json={"name": name, "type": kind, "stream": stream, "toxicity": toxicity,
                                "attributes": attributes})
        if resp.status_code == 404:
            raise ActivityFailed(f"{what}: toxiproxy at {self.url} has no proxy {edge!r}")
        logger.info("toxiproxy %s: added toxic %s (%s %s, toxicity %g, %s) to %s", self.url, name, kind, stream,
                    toxicity, attributes, edge)

    def remove_toxic(self, edge: str, name: str, what: str) -> bool:
        """Delete toxic ``name`` from ``edge``; ``False`` if it was not there (already gone)."""
        existed = self._send("DELETE", f"/proxies/{edge}/toxics/{name}", what).status_code != 404
        if existed:
            logger.info("toxiproxy %s: removed toxic %s from %s", self.url, name, edge)
        return existed

    def snapshot(self, what: str) -> dict[str, Any]:
        """Per proxy, ``enabled`` and its toxics in a stable order: what the residue audit compares."""
        return {name: {"enabled": bool(p["enabled"]),
                       "toxics": sorted(({"name": t["name"], "type": t["type"], "stream": t["stream"],
                                          "toxicity": t.get("toxicity"), "attributes": t.get("attributes") or {}}
                                         for t in p.get("toxics") or []), key=lambda t: str(t["name"]))}
                for name, p in sorted(self.proxies(what).items())}


def conflicting(proxy: dict[str, Any], prefix: str) -> list[str]:
    """Names of toxics on ``proxy`` that start with ``prefix``."""
    return [t["name"] for t in proxy.get("toxics", []) if t["name"].startswith(prefix)]


def add_toxics(servers: Sequence[ToxiproxyAPI], edge: str, prefix: str, kind: str, stream: str,
               attributes: dict[str, Any], toxicity: float, what: str, dry_run: bool) -> dict[str, Any]:
    """Add toxic ``kind`` named ``<prefix>-<stream>`` on each stream of the edge's proxies in every server
    (the local stack's one, or each replica's sidecar on a cluster); refuses, changing nothing, if a server does
    not answer, lacks the proxy or has a toxic of ours there already."""
    chosen = streams(stream)
    members = [(tp, tp.members(edge, what)) for tp in servers]
    present = {f"{tp.url}/proxies/{name}": conflicting(proxy, prefix) for tp, found in members
               for name, proxy in found.items() if conflicting(proxy, prefix)}
    if present:
        raise ActivityFailed(f"{what}: already there ({present}); remove it first")
    names = [f"{prefix}-{s}" for s in chosen]
    proxies = sorted(f"{tp.url}/proxies/{name}" for tp, found in members for name in found)
    plan = f"add {kind} toxics {names} ({attributes}, toxicity {toxicity:g}) to {', '.join(proxies)}"
    if dry_run:
        return {"would": plan, "edge": edge, "proxies": proxies}
    for tp, found in members:
        for proxy_name in found:
            for name, s in zip(names, chosen, strict=True):
                tp.add_toxic(proxy_name, name, kind, s, attributes, toxicity, what)
    return {"edge": edge, "proxies": proxies, "toxics": names, "changed": plan}


def remove_toxics(servers: Sequence[ToxiproxyAPI], edge: str, prefix: str, what: str,
                  dry_run: bool) -> dict[str, Any]:
    """Remove every toxic named ``<prefix>-*`` from the edge's proxies in every server; none there is success.
    A server that does not answer fails the removal (its toxics cannot be seen gone), naming it."""
    present = {f"{tp.url}/proxies/{name}": (tp, name, conflicting(proxy, prefix)) for tp in servers
               for name, proxy in tp.members(edge, what).items()}
    if dry_run:
        return {"would": "remove toxics " + ", ".join(f"{where}: {toxics}" for where, (_, _, toxics)
                                                       in present.items()), "edge": edge}
    removed = [f"{where}:{toxic}" for where, (tp, name, toxics) in present.items() for toxic in toxics
               if tp.remove_toxic(name, toxic, what)]
    return {"edge": edge, "proxies": sorted(present),
            "changed": f"removed {', '.join(removed)}" if removed else "already gone"}
