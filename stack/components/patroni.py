"""PostgreSQL under Patroni (ha profile): two members with etcd as DCS, and the admin calls faults use.

Members ``postgres`` (Patroni name ``pg1``) and ``postgres-2`` (``pg2``). Synchronous
replication is on by default (``RESILIENCE_PATRONI_SYNCHRONOUS_MODE=off`` at ``up``, or
:func:`set_synchronous_mode` at run time). ``primary_start_timeout: 0``: a crashed primary is
failed over to the standby instead of being restarted in place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from stack.components.base import Component, chown_postgres
from stack.components.postgres import ensure_audit_database
from stack.context import StackContext
from stack.endpoints import HOST
from stack.errors import ComponentError

TTL_S = 10
LOOP_WAIT_S = 2
RETRY_TIMEOUT_S = 4  # Patroni requires loop_wait + 2 * retry_timeout <= ttl
HTTP_TIMEOUT = (2.0, 5.0)


@dataclass(frozen=True)
class PgMember:
    """One Patroni member: its supervisor program, Patroni name and port names."""

    index: int
    program: str
    name: str
    port: str
    api_port: str


PG_MEMBERS = (PgMember(0, "postgres", "pg1", "postgres", "patroni_api"),
              PgMember(1, "postgres-2", "pg2", "postgres_2", "patroni_api_2"))


def synchronous_mode_default() -> bool:
    """``RESILIENCE_PATRONI_SYNCHRONOUS_MODE`` (default on): the value a new cluster is bootstrapped with."""
    value = os.environ.get("RESILIENCE_PATRONI_SYNCHRONOUS_MODE", "on").strip().lower()
    return value not in ("0", "off", "false", "no")


def _member_dir(ctx: StackContext, member: PgMember) -> Path:
    return ctx.data_dir / "postgres" / member.name


def _pgdata(ctx: StackContext, member: PgMember) -> Path:
    return _member_dir(ctx, member) / "pgdata"


def _sockdir(ctx: StackContext, member: PgMember) -> Path:
    return _member_dir(ctx, member) / "run"


def _api(ctx: StackContext, member: PgMember) -> str:
    return f"http://{HOST}:{ctx.endpoints.port(member.api_port)}"


def _patroni_config(ctx: StackContext, member: PgMember) -> dict[str, Any]:
    eps = ctx.endpoints
    password = ctx.secrets.postgres_password
    port = eps.port(member.port)
    api = eps.port(member.api_port)
    sync = synchronous_mode_default()
    return {
        "scope": f"sqlaudit-{eps.port_base}",
        "namespace": "/sql-audit-resilience/",
        "name": member.name,
        "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
        # The other member and etcd are reached through this member's own toxiproxy proxies (the
        # addresses it advertises, and its DCS host), so it can be isolated as a partition would
        # (faults/postgres_isolation.py); the suite's own calls use the direct ports.
        "restapi": {"listen": f"{HOST}:{api}", "connect_address": f"{HOST}:{eps.port(f'proxy_api_{member.name}')}"},
        # use_proxies: talk to etcd only through that address (no discovery of etcd's own client URLs,
        # which would bypass the proxy).
        "etcd3": {"hosts": f"{HOST}:{eps.port(f'proxy_dcs_{member.name}')}", "use_proxies": True},
        "bootstrap": {
            "dcs": {
                "ttl": TTL_S, "loop_wait": LOOP_WAIT_S, "retry_timeout": RETRY_TIMEOUT_S,
                "maximum_lag_on_failover": 1024 * 1024,
                "synchronous_mode": sync,
                "failsafe_mode": True,
                "primary_start_timeout": 0,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {"wal_level": "replica", "hot_standby": "on", "max_wal_senders": 5,
                                   "max_replication_slots": 5, "wal_log_hints": "on", "max_connections": 100,
                                   "synchronous_commit": "on", "wal_keep_size": "128MB"},
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, {"auth-local": "trust"},
                       {"auth-host": "scram-sha-256"}],
        },
        "postgresql": {
            "listen": f"{HOST}:{port}",
            "connect_address": f"{HOST}:{eps.port(f'proxy_peer_{member.name}')}",
            "data_dir": str(_pgdata(ctx, member)),
            "bin_dir": str(ctx.tools.pg_bindir),
            "pgpass": str(_member_dir(ctx, member) / ".pgpass"),
            # A replica's clone must not wait for a spread checkpoint (94 s of it seen on a loaded machine,
            # past the member's start-up timeout).
            "basebackup": [{"checkpoint": "fast"}],
            "parameters": {"unix_socket_directories": str(_sockdir(ctx, member)), "shared_buffers": "128MB",
                           "fsync": "on"},
            "pg_hba": ["local all all trust",
                       f"host replication replicator {HOST}/32 scram-sha-256",
                       f"host all all {HOST}/32 scram-sha-256"],
            # One generated password per stack (secrets.json) for the superuser, replication and
            # audit roles: everything listens on loopback only.
            "authentication": {
                "superuser": {"username": "postgres", "password": password},
                "replication": {"username": "replicator", "password": password},
                "rewind": {"username": "postgres", "password": password},
            },
        },
        "watchdog": {"mode": "off"},
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def patroni_cluster(ctx: StackContext) -> dict[str, Any]:
    """Patroni's ``GET /cluster`` from the first member that answers.

    Raises :class:`ComponentError` when no member's REST API answers.
    """
    errors = []
    for member in PG_MEMBERS:
        url = f"{_api(ctx, member)}/cluster"
        try:
            resp = requests.get(url, timeout=HTTP_TIMEOUT)
            resp.raise_for_status()
            return dict(resp.json())
        except (requests.RequestException, ValueError) as exc:
            errors.append(f"{url}: {type(exc).__name__}")
    raise ComponentError("patroni", "no member's REST API answers: " + "; ".join(errors))


def member_by_name(name: str) -> PgMember:
    """The :class:`PgMember` whose Patroni name is ``name``."""
    for member in PG_MEMBERS:
        if member.name == name:
            return member
    raise KeyError(f"no Patroni member {name!r}; members: {', '.join(m.name for m in PG_MEMBERS)}")


def patroni_leader(ctx: StackContext) -> PgMember | None:
    """The member that holds the leader lock and runs, or ``None`` (no leader right now)."""
    for m in patroni_cluster(ctx).get("members", []):
        if m.get("role") in ("leader", "master", "primary") and m.get("state") == "running":
            return member_by_name(str(m["name"]))
    return None


def leader_lease_ttl(ctx: StackContext) -> float:
    """Seconds the leader key's etcd lease was granted for: how long the key outlives its last renewal.

    Patroni raises a ``ttl`` below 20 to 20 for etcd3 (it logs "ttl=10 can't be smaller than 20"), so the
    configured :data:`TTL_S` is not the key's real lifetime; etcd's ``grantedTTL`` is. Raises
    :class:`ComponentError` when etcd does not answer or no leader key exists."""
    import base64

    url = f"http://{HOST}:{ctx.endpoints.port('etcd_client')}"
    key = base64.b64encode(f"/sql-audit-resilience/sqlaudit-{ctx.endpoints.port_base}/leader".encode()).decode()
    try:
        kvs = requests.post(f"{url}/v3/kv/range", json={"key": key}, timeout=HTTP_TIMEOUT).json().get("kvs") or []
        if not kvs or not kvs[0].get("lease"):
            raise ComponentError("etcd", f"{url}: no leader key with a lease")
        lease = requests.post(f"{url}/v3/lease/timetolive", json={"ID": kvs[0]["lease"]}, timeout=HTTP_TIMEOUT)
        return float(lease.json()["grantedTTL"])
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise ComponentError("etcd", f"{url}: leader key's lease: {exc}") from exc


def set_synchronous_mode(ctx: StackContext, enabled: bool) -> None:
    """Switch Patroni's ``synchronous_mode`` at run time (``PATCH /config``)."""
    errors = []
    for member in PG_MEMBERS:
        try:
            resp = requests.patch(f"{_api(ctx, member)}/config", json={"synchronous_mode": enabled},
                                  timeout=HTTP_TIMEOUT)
            resp.raise_for_status()
            return
        except requests.RequestException as exc:
            errors.append(f"{member.name}: {exc}")
    raise ComponentError("patroni", "PATCH /config failed on every member: " + "; ".join(errors))


def postmaster_pid(ctx: StackContext, member: PgMember) -> int | None:
    """Pid of ``member``'s postmaster from ``postmaster.pid``, if that process is alive and is it."""
    import psutil

    try:
        lines = (_pgdata(ctx, member) / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        proc = psutil.Process(pid)
        if str(_pgdata(ctx, member)) in " ".join(proc.cmdline()):
            return pid
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
    return None


def describe_members(cluster: dict[str, Any]) -> str:
    parts = []
    for m in sorted(cluster.get("members", []), key=lambda m: str(m.get("name"))):
        lag = m.get("lag")
        parts.append(f"{m.get('name')} {m.get('role')} {m.get('state')}"
                     + (f" lag {lag}" if lag not in (None, 0, "0") else "")
                     + (f" tl {m['timeline']}" if m.get("timeline") is not None else ""))
    return ", ".join(parts)


def patroni_cluster_problems(cluster: dict[str, Any], sync: bool) -> list[str]:
    """What keeps the Patroni cluster from full redundancy (empty: leader + streaming replica(s))."""
    members = cluster.get("members", [])
    problems = []
    leaders = [m for m in members if m.get("role") in ("leader", "master", "primary")]
    if len(leaders) != 1 or leaders[0].get("state") != "running":
        problems.append(f"{len(leaders)} leader(s) running")
    replicas = [m for m in members if m not in leaders]
    if len(replicas) != len(PG_MEMBERS) - 1:
        problems.append(f"{len(replicas)} of {len(PG_MEMBERS) - 1} replica(s) registered")
    for m in replicas:
        if m.get("state") not in ("streaming", "running"):
            problems.append(f"{m.get('name')} {m.get('state')}")
    if sync and not any(m.get("role") == "sync_standby" for m in replicas):
        problems.append("synchronous_mode on but no sync_standby")
    return problems


def member(ctx: StackContext, member: PgMember) -> Component:
    mdir = _member_dir(ctx, member)
    conf = ctx.conf_dir / "patroni" / f"{member.name}.yml"
    api = _api(ctx, member)

    def prepare(c: StackContext) -> None:
        import yaml

        for d in (mdir.parent, mdir, _sockdir(c, member)):
            d.mkdir(parents=True, exist_ok=True)
            chown_postgres(d)
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.parent.chmod(0o755)
        conf.write_text("# Generated by the stack package (ha profile); do not edit.\n"
                        + yaml.safe_dump(_patroni_config(c, member), sort_keys=False))
        chown_postgres(conf)
        conf.chmod(0o600)  # holds the stack's password

    def probe(c: StackContext) -> str:
        resp = requests.get(f"{api}/patroni", timeout=HTTP_TIMEOUT)
        state = resp.json().get("state")
        if state != "running":
            raise ComponentError(member.program, f"Patroni member {member.name}: postgres {state}")
        return f"{member.name} running"

    def bootstrap(c: StackContext) -> str:

        leader = patroni_leader(c)
        if leader is None:
            raise ComponentError(member.program, "no Patroni leader yet")
        ensure_audit_database(c, {"host": str(_sockdir(c, leader)), "port": c.endpoints.port(leader.port)})
        return f"role, database and schema present (leader {leader.name})"

    def health(c: StackContext) -> str:
        me = requests.get(f"{api}/patroni", timeout=HTTP_TIMEOUT).json()
        cluster = patroni_cluster(c)
        sync = bool(requests.get(f"{api}/config", timeout=HTTP_TIMEOUT).json().get("synchronous_mode"))
        problems = patroni_cluster_problems(cluster, sync)
        if me.get("state") != "running":
            problems.insert(0, f"{member.name}: postgres {me.get('state')}")
        summary = f"{describe_members(cluster)}; synchronous_mode {'on' if sync else 'off'}"
        if problems:
            raise ComponentError(member.program, f"{'; '.join(problems)} ({summary})")
        return f"{member.name} is {me.get('role')}; {summary}"

    def pids(c: StackContext) -> list[int]:
        pid = postmaster_pid(c, member)
        return [pid] if pid else []

    port = ctx.endpoints.port(member.port)
    return Component(
        name=member.program,
        command=[str(ctx.tools.patroni), str(conf)],
        ports=[member.port, member.api_port],
        user="postgres",
        environment={"PATH": f"{ctx.tools.pg_bindir}:/usr/bin:/bin", "HOME": str(mdir)},
        prepare=prepare,
        probe=probe,
        bootstrap=bootstrap if member.index == 0 else None,
        health=health,
        stopsignal="TERM",  # Patroni stops PostgreSQL (fast) and exits
        stopwaitsecs=40,
        startup_timeout=150,
        metrics=f"{HOST}:{ctx.endpoints.port(member.api_port)}",
        metrics_labels={"member": member.name},
        endpoint=f"postgresql://{ctx.pg_user}@127.0.0.1:{port}/{ctx.pg_database} (patroni {api})",
        pids=pids,
    )
