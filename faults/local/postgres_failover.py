"""Local backend of :mod:`faults.postgres_failover`.

Minimal profile: the single server is stopped (``stop``) or its process group
SIGKILLed (``kill``, supervisord restarts it and PostgreSQL runs crash recovery).
HA profile (Patroni pair): :func:`_fail_over_patroni` acts on the current leader:
``switchover`` (Patroni REST API), ``kill`` (SIGKILL of the leader's Patroni and
postmaster; supervisord restarts Patroni, which hands over to the standby:
``primary_start_timeout`` 0) or ``stop`` (graceful stop of the leader's member,
down until expiry or remove).
"""

import contextlib
import signal
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.wait import wait_until
from faults.local import _ha, local_stack
from faults.local.processes import Programs, killpg, start_again, stop_for
from stack.components import patroni
from target.settings import TargetSettings, resolve

PROGRAM = "postgres"
METHODS = ("stop", "kill")
"""What the minimal profile can do (a switchover needs a standby); the ha profile has every method."""
HA_RESTORE_TIMEOUT_S = 120.0


def _fail_over_patroni(settings: TargetSettings, method: str, what: str) -> dict[str, Any]:
    """HA profile: switch over, hard-kill or stop the current Patroni leader."""
    programs = Programs(settings)
    programs.require_running(what)
    leader = _ha.leader(settings, what)
    others = [m for m in patroni.PG_MEMBERS if m != leader]
    state = {m["name"]: m for m in _ha.cluster(settings, what).get("members", [])}
    ready = [m for m in others if state.get(m.name, {}).get("state") in ("streaming", "running")]
    if not ready:
        members = patroni.describe_members({"members": list(state.values())})
        raise ActivityFailed(f"{what}: no standby is streaming ({members}): nothing to fail over to")
    candidate = ready[0]
    if method == "stop":
        result = stop_for(settings, leader.program, what)
        result.update(member=leader.name, candidate=candidate.name)
        return result
    if settings.dry_run:
        how = ("POST /switchover" if method == "switchover"
               else f"SIGKILL {leader.program} (Patroni) and the postmaster of {leader.name}")
        return {"would": f"{how}: leader {leader.name} -> {candidate.name}", "member": leader.name}
    t0 = time.time()
    if method == "switchover":
        answer = _ha.switchover(settings, leader, candidate, what)
        return {"member": leader.name, "candidate": candidate.name, "started_at": t0, "changed": answer}
    ctx = local_stack(settings).ctx
    postmaster = patroni.postmaster_pid(ctx, leader)
    patroni_pid = programs.kill(leader.program)
    if postmaster is not None:
        with contextlib.suppress(ActivityFailed):  # already gone with Patroni: that is the goal
            killpg(postmaster, signal.SIGKILL, what)
    return {"member": leader.name, "program": leader.program, "patroni_pid": patroni_pid,
            "postmaster_pid": postmaster, "started_at": t0,
            "changed": f"SIGKILL leader {leader.name}: Patroni pid {patroni_pid}, postmaster pid {postmaster}"}


def _restore_patroni(settings: TargetSettings, what: str) -> dict[str, Any]:
    """HA profile: every member RUNNING, a leader elected, the standby streaming; idempotent."""
    programs = Programs(settings)
    if not programs.supervisord_running():
        return {"changed": "stack not running: nothing to undo", "would": "nothing"}
    if settings.dry_run:
        return {"would": f"start {[m.program for m in patroni.PG_MEMBERS]} if down, wait for a leader and streaming "
                         f"standby via {programs.where}"}
    t0 = time.monotonic()
    done = {m.program: start_again(settings, m.program, what, HA_RESTORE_TIMEOUT_S)["changed"]
            for m in patroni.PG_MEMBERS}
    cluster = _ha.wait_patroni_redundant(settings, max(10.0, HA_RESTORE_TIMEOUT_S - (time.monotonic() - t0)), what)
    started = [p for p, d in done.items() if d != "was RUNNING"]
    return {"members": done, "cluster": cluster, "accepting": _wait_accepting(settings, 60.0, what),
            "seconds": round(time.monotonic() - t0, 2),
            "changed": f"started {', '.join(started)}; {cluster}" if started else f"all running; {cluster}"}


def fail_over_postgres(method: str = "stop", duration: float | None = None,
                       configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.postgres_failover.fail_over_postgres`."""
    settings = resolve(configuration)
    what = f"PostgreSQL failover ({method})"
    profile = local_stack(settings).ctx.profile
    if profile == "ha":
        return _fail_over_patroni(settings, method, what)
    if method not in METHODS:
        raise ActivityFailed(f"{what}: method {method!r} needs a standby to switch over to; the {profile} profile "
                             f"has one server (methods here: {', '.join(METHODS)}; the ha profile has switchover)")
    if method == "stop":
        return stop_for(settings, PROGRAM, what)
    programs = Programs(settings)
    info = programs.running_info(PROGRAM, what)
    if settings.dry_run:
        return {"would": f"SIGKILL the postgres process group (pid {info['pid']}) via {programs.where}"}
    pid = programs.kill(PROGRAM)
    return {"program": PROGRAM, "pid": pid, "changed": f"SIGKILL postgres pid {pid} (crash recovery follows)"}


def restore_postgres(configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.postgres_failover.restore_postgres`."""
    settings = resolve(configuration)
    what = "restore PostgreSQL"
    if _ha.is_ha(settings):
        return _restore_patroni(settings, what)
    result = start_again(settings, PROGRAM, what)
    if settings.dry_run or result["changed"].startswith("stack not running"):
        return result
    result["accepting"] = _wait_accepting(settings, 90.0, what)
    return result


def _wait_accepting(settings: TargetSettings, timeout: float, what: str) -> str:
    import psycopg

    ctx = local_stack(settings).ctx

    def accepting() -> str:
        with psycopg.connect(**ctx.postgres_kwargs(), connect_timeout=3, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute("SELECT 1")
        return "SELECT 1 ok"

    return wait_until(accepting, timeout, 0.3, f"{what}: postgres at 127.0.0.1:{ctx.endpoints.port('postgres')} does "
                                               f"not accept connections after {timeout:.0f} s",
                      retry_on=(psycopg.Error,), error=ActivityFailed)
