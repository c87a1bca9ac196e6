"""Local backend of :mod:`faults.postgres_isolation`: the Patroni leader cut off through toxiproxy.

On the ``ha`` profile every Patroni member reaches etcd through its own proxy (``dcs_pg1``), and
advertises its PostgreSQL and REST API to the other member through proxies (``peer_pg1``,
``api_pg1``): :meth:`stack.endpoints.Endpoints.patroni_proxies`. Isolating leader ``pgN`` cuts
``dcs_pgN`` (it can no longer renew its leader key), every ``peer_*``/``api_*`` proxy (with two
members each one is an edge of the leader: replication both ways, the leader race's and failsafe
mode's REST calls both ways) and, with ``clients: cut``, the audit service's own proxy to ``pgN``.
The other member keeps its DCS proxy. The processes are not touched: the old leader keeps running
with its sessions, which is the point of a split-brain test.

The ``synchronous_mode`` the fault replaces is kept in ``<data dir>/faults/postgres_isolation.json``
until the heal puts it back (the heal takes no argument, so a ``resilience cleanup`` can run it).
"""

import json
import logging
import time
from pathlib import Path
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.wait import wait_until
from faults.local import _ha, local_stack
from faults.local.processes import Programs
from faults.local.proxies import Toxiproxy
from stack.components import patroni
from stack.errors import ComponentError
from target.settings import TargetSettings, resolve
from target.topology import STREAMS

logger = logging.getLogger(__name__)

PREFIX = "chaos-isolation"
HEAL_TIMEOUT_S = 120.0
SYNC_TIMEOUT_S = 30.0


def service_proxy(member: patroni.PgMember) -> str:
    """The audit service's toxiproxy proxy to ``member`` (``postgres``, ``postgres_2``)."""
    return member.port


def cut_proxies(member: patroni.PgMember, clients: str) -> list[str]:
    """The proxies that isolate ``member`` as a partition would (see the module doc)."""
    names = [f"dcs_{member.name}"]
    names += [f"{kind}_{m.name}" for kind in ("peer", "api") for m in patroni.PG_MEMBERS]
    if clients == "cut":
        names.append(service_proxy(member))
    return names


def all_proxies() -> list[str]:
    """Every proxy this fault may have cut, on any member (what the heal looks at)."""
    names = [f"{kind}_{m.name}" for kind in ("dcs", "peer", "api") for m in patroni.PG_MEMBERS]
    return names + [service_proxy(m) for m in patroni.PG_MEMBERS]


def _saved(settings: TargetSettings) -> Path:
    return local_stack(settings).ctx.data_dir / "faults" / "postgres_isolation.json"


def _sync_mode(settings: TargetSettings, what: str) -> bool:
    ctx = local_stack(settings).ctx
    errors = []
    for member in patroni.PG_MEMBERS:
        url = f"http://127.0.0.1:{ctx.endpoints.port(member.api_port)}/config"
        try:
            return bool(requests.get(url, timeout=(2.0, 5.0)).json().get("synchronous_mode"))
        except (requests.RequestException, ValueError) as exc:
            errors.append(f"{url}: {exc}")
    raise ActivityFailed(f"{what}: Patroni's configuration unreadable: {'; '.join(errors)}")


def _set_sync_mode(settings: TargetSettings, enabled: bool, what: str) -> str:
    """Switch ``synchronous_mode`` and wait until the cluster shows it (a sync standby, or none)."""
    ctx = local_stack(settings).ctx
    try:
        patroni.set_synchronous_mode(ctx, enabled)
    except ComponentError as exc:
        raise ActivityFailed(f"{what}: {exc}") from exc

    def shown() -> str | None:
        state = _ha.cluster(settings, what)
        has_sync = any(m.get("role") == "sync_standby" for m in state.get("members", []))
        names = _standby_names(settings)
        # Both views: the DCS (a sync_standby role) and the leader's own setting. The role changes first;
        # a run that cut the leader in between took its commits as still synchronous (seen live).
        return f"{patroni.describe_members(state)}; synchronous_standby_names {names!r}" \
            if has_sync == enabled and names is not None and bool(names) == enabled else None

    return wait_until(shown, SYNC_TIMEOUT_S, 0.5, f"{what}: synchronous_mode {'on' if enabled else 'off'} not in "
                                                  f"effect within {SYNC_TIMEOUT_S:.0f} s", error=ActivityFailed)


def _standby_names(settings: TargetSettings) -> str | None:
    """The leader's ``synchronous_standby_names`` as its server applies it (``None``: not reachable now)."""
    import psycopg

    kwargs = local_stack(settings).ctx.postgres_kwargs()
    try:
        with psycopg.connect(**kwargs, connect_timeout=3, autocommit=True) as conn:  # type: ignore[arg-type]
            row = conn.execute("SHOW synchronous_standby_names").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else ""


def isolate_postgres_leader(clients: str = "keep", synchronous: str = "keep", mode: str = "blackhole",
                            duration: float | None = None, configuration: Configuration | None = None,
                            secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.postgres_isolation.isolate_postgres_leader`."""
    settings = resolve(configuration)
    what = "isolate the PostgreSQL leader"
    _ha.require_ha(settings, what, "a Patroni pair on etcd; minimal has one PostgreSQL server")
    Programs(settings).require_running(what)
    leader = _ha.leader(settings, what)
    state = {m["name"]: m for m in _ha.cluster(settings, what).get("members", [])}
    standby = [m for m in patroni.PG_MEMBERS if m != leader
               and state.get(m.name, {}).get("state") in ("streaming", "running")]
    if not standby:
        members = patroni.describe_members({"members": list(state.values())})
        raise ActivityFailed(f"{what}: no standby is streaming ({members}): nothing could take over")
    tp = Toxiproxy(settings)
    names = cut_proxies(leader, clients)
    proxies = {n: tp.proxy(n, what) for n in names}
    taken = {n: {"enabled": p["enabled"], "toxics": [t["name"] for t in p.get("toxics", [])]}
             for n, p in proxies.items() if not p["enabled"] or p.get("toxics")}
    if taken:
        raise ActivityFailed(f"{what}: proxies already faulted at toxiproxy {tp.url}: {taken}; heal them first")
    was_sync = _sync_mode(settings, what)
    want_sync = was_sync if synchronous == "keep" else synchronous == "on"
    how = "disable" if mode == "refuse" else "blackhole (timeout toxics, both streams)"
    plan = (f"{how} proxies {', '.join(names)} at {tp.url}: leader {leader.name} cut from etcd and {standby[0].name}"
            f"{' and from the audit service' if clients == 'cut' else ''}; synchronous_mode "
            f"{'on' if want_sync else 'off'}")
    if settings.dry_run:
        return {"would": plan, "member": leader.name, "candidate": standby[0].name, "proxies": names}
    path = _saved(settings)
    if want_sync != was_sync:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # a second isolation keeps the value from before the first one
            path.write_text(json.dumps({"synchronous_mode": was_sync}))
        _set_sync_mode(settings, want_sync, what)
    cluster = patroni.describe_members(_ha.cluster(settings, what))
    t0 = time.time()
    for name in names:
        if mode == "refuse":
            tp.set_enabled(name, False, what)
        else:
            for stream in STREAMS:
                tp.add_toxic(name, f"{PREFIX}-{stream}", "timeout", stream, {"timeout": 0}, 1.0, what)
    logger.info("isolated Patroni leader %s (%s): %s", leader.name, mode, ", ".join(names))
    return {"member": leader.name, "candidate": standby[0].name, "isolated_at": t0, "proxies": names,
            "mode": mode, "clients": clients, "synchronous_mode": want_sync, "cluster_before": cluster,
            "toxiproxy": tp.url, "changed": plan}


def heal_postgres_leader(configuration: Configuration | None = None,
                         secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.postgres_isolation.heal_postgres_leader`."""
    settings = resolve(configuration)
    what = "heal the PostgreSQL leader's partition"
    if not Programs(settings).supervisord_running():
        return {"changed": "stack not running: nothing to undo", "would": "nothing"}
    if local_stack(settings).ctx.profile != "ha":
        return {"changed": "not the ha profile: nothing this fault could have cut", "would": "nothing"}
    tp = Toxiproxy(settings)
    proxies = {n: tp.proxy(n, what) for n in all_proxies()}
    ours = {n: [t["name"] for t in p.get("toxics", []) if t["name"].startswith(PREFIX)] for n, p in proxies.items()}
    saved = _saved(settings)
    if settings.dry_run:
        return {"would": f"at {tp.url}: remove {ours}, enable {[n for n, p in proxies.items() if not p['enabled']]}"
                         f"{'; restore synchronous_mode from ' + str(saved) if saved.exists() else ''}; wait for a "
                         "leader and a streaming replica"}
    t0 = time.monotonic()
    changed = []
    for name, proxy in proxies.items():
        removed = [t for t in ours[name] if tp.remove_toxic(name, t, what)]
        if removed:
            changed.append(f"removed {', '.join(removed)} from {name}")
        if not proxy["enabled"]:
            tp.set_enabled(name, True, what)
            changed.append(f"enabled {name}")
    cluster = _ha.wait_patroni_redundant(settings, HEAL_TIMEOUT_S, what)
    if saved.exists():
        previous = bool(json.loads(saved.read_text())["synchronous_mode"])
        cluster = _set_sync_mode(settings, previous, what)
        saved.unlink()
        changed.append(f"synchronous_mode back {'on' if previous else 'off'}")
    return {"cluster": cluster, "seconds": round(time.monotonic() - t0, 2),
            "changed": "; ".join(changed) or f"already healed; {cluster}"}
