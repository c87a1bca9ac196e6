"""Split-brain: writes attempted on the isolated old leader, and where each acknowledged one ended up.

:func:`split_brain_writes` is a Chaos Toolkit probe that runs in the background of a
``postgres_split_brain*`` experiment (``background: true``), from before the partition
(:func:`faults.postgres_isolation.isolate_postgres_leader`) to well after it. It plays a client on
the old leader's side of the cut: it connects to the old leader's own port (no proxy) and inserts one
canary row every ``interval_s``, recording each attempt's outcome (``acknowledged``; ``refused`` with
SQLSTATE 25006, read-only: the server was demoted; ``failed``: no answer, so the outcome is unknown to
the client). Beside it, it polls both members' Patroni REST APIs (direct ports) for the moment the old
leader stopped being primary and the moment the other one became primary. At the end it reads the
canary table on *both* servers: the old leader's own table (still readable as a standby) and the new
leader's.

:func:`account` turns that into the verdicts (:mod:`resilience.judge`):

Leader key lost at
    the earlier of the other member's promotion and the cut plus Patroni's ``ttl``: the key was last
    renewed before the cut, so it had expired by then at the latest.
Writes after the key was lost (``split_brain_writes``, must be 0)
    canary writes the old leader acknowledged at or after that moment, plus rows in its own table
    written at or after it (its own record, not the client's word).
Lost acknowledged writes (``split_brain_lost``) and their span (``split_brain_rpo``)
    canary writes the old leader acknowledged that the new leader does not hold: with synchronous
    replication none (a commit waits for the standby, which the cut removed); asynchronous, the
    writes of the moments between the cut and the demotion.

It cannot pass by accident (:func:`guard`): no isolation in the run, no promotion seen, or no write
*refused* by the old leader after the key was lost (then the writer never proved anything), and the
verdicts are inconclusive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from target.settings import resolve

__all__ = ["split_brain_writes"]

logger = logging.getLogger(__name__)

TABLE = "split_brain_canary"
READ_ONLY = "25006"
PROBE = "split_brain_writes"
FAULT = "isolate_postgres_leader"
PRIMARY_ROLES = ("primary", "master", "leader")


def split_brain_writes(observe_s: float = 60.0, interval_s: float = 0.1,
                       configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Write canary rows on the current Patroni leader's own port for ``observe_s`` seconds, then read back.

    Args:
        observe_s: how long to keep writing (start it before the partition, end it before the heal).
        interval_s: pause between two writes.

    Returns ``{"member", "candidate", "ttl_s", "attempts": [[seq, started, ended, outcome]...],
    "demoted_at", "promoted_at", "on_old": {seq: written_at}, "on_new": [seq...], "errors"}``.

    Raises:
        ActivityFailed: not a local ha stack, no leader at the start, or the canary table cannot be made.
    """
    import psycopg

    from faults.local import local_stack
    from stack.components import patroni

    settings = resolve(configuration)
    if settings.target != "local":
        raise ActivityFailed(f"{PROBE}: the {settings.target} target has no backend (local ha profile only)")
    ctx = local_stack(settings).ctx
    if ctx.profile != "ha":
        raise ActivityFailed(f"{PROBE}: needs the ha profile; the stack at {settings.stack_port_base} runs "
                             f"{ctx.profile}")
    try:
        old = patroni.patroni_leader(ctx)
        ttl = patroni.leader_lease_ttl(ctx)
    except Exception as exc:
        raise ActivityFailed(f"{PROBE}: Patroni: {exc}") from exc
    if old is None:
        raise ActivityFailed(f"{PROBE}: the Patroni cluster has no running leader")
    new = next(m for m in patroni.PG_MEMBERS if m != old)
    run = str(settings.run_id or int(time.time()))

    def kwargs(member: patroni.PgMember) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": ctx.endpoints.port(member.port), "dbname": ctx.pg_database,
                "user": ctx.pg_user, "password": ctx.secrets.postgres_password, "connect_timeout": 2,
                "autocommit": True}

    try:
        with psycopg.connect(**kwargs(old)) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (run_id text NOT NULL, seq integer NOT NULL, "
                         "written_at double precision NOT NULL DEFAULT extract(epoch from clock_timestamp()), "
                         "PRIMARY KEY (run_id, seq))")
    except psycopg.Error as exc:
        raise ActivityFailed(f"{PROBE}: canary table on {old.name} (port {ctx.endpoints.port(old.port)}): {exc}") \
            from exc

    deadline = time.time() + observe_s
    attempts: list[list[Any]] = []
    roles: dict[str, float | None] = {"demoted_at": None, "promoted_at": None}
    errors: list[str] = []

    def write() -> None:
        conn = None
        seq = 0
        while time.time() < deadline:
            seq += 1
            t0 = time.time()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(**kwargs(old))
                conn.execute(f"INSERT INTO {TABLE} (run_id, seq) VALUES (%s, %s)", (run, seq))
                outcome = "acknowledged"
            except psycopg.Error as exc:
                outcome = "refused" if getattr(exc, "sqlstate", None) == READ_ONLY else "failed"
                if outcome == "failed" and len(errors) < 20:
                    errors.append(f"{seq}: {type(exc).__name__}: {str(exc).strip()[:160]}")
                if conn is not None and outcome == "failed":
                    conn.close()
                    conn = None
            attempts.append([seq, t0, time.time(), outcome])
            time.sleep(interval_s)
        if conn is not None:
            conn.close()

    def watch() -> None:
        while time.time() < deadline:
            now = time.time()
            for member, key, primary in ((old, "demoted_at", False), (new, "promoted_at", True)):
                if roles[key] is not None:
                    continue
                try:
                    role = requests.get(f"http://127.0.0.1:{ctx.endpoints.port(member.api_port)}/patroni",
                                        timeout=(1.0, 2.0)).json().get("role")
                except (requests.RequestException, ValueError):
                    continue
                if (role in PRIMARY_ROLES) == primary:
                    roles[key] = now
            time.sleep(0.25)

    threads = [threading.Thread(target=write, name="split-brain-writer", daemon=True),
               threading.Thread(target=watch, name="split-brain-roles", daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(observe_s + 120.0)  # a commit waiting for a standby ends when Patroni demotes or the cut heals
    on_old: dict[str, float] = {}
    on_new: list[int] = []
    for member, into in ((old, "old"), (new, "new")):
        try:
            with psycopg.connect(**kwargs(member)) as conn:
                rows = conn.execute(f"SELECT seq, written_at FROM {TABLE} WHERE run_id = %s", (run,)).fetchall()
        except psycopg.Error as exc:
            errors.append(f"read {member.name}: {type(exc).__name__}: {str(exc).strip()[:160]}")
            rows = None
        if into == "old":
            on_old = {str(s): float(w) for s, w in rows} if rows is not None else {}
        elif rows is not None:
            on_new = sorted(int(s) for s, _ in rows)
    result = {"member": old.name, "candidate": new.name, "ttl_s": ttl, "run": run, "attempts": attempts,
              **roles, "on_old": on_old, "on_new": on_new if not any(e.startswith(f"read {new.name}") for e in errors)
              else None, "errors": errors}
    logger.info("%s: %d attempts on %s (%s), demoted at %s, %s promoted at %s", PROBE, len(attempts), old.name,
                _tally(attempts), roles["demoted_at"], new.name, roles["promoted_at"])
    return result


def _tally(attempts: list[list[Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in attempts:
        out[a[3]] = out.get(a[3], 0) + 1
    return out


@dataclass
class SplitBrainAccount:
    """What the old leader did after it lost its leader key, and what of it survived on the new leader."""

    isolated_at: float | None
    key_lost_at: float | None
    demoted_at: float | None
    promoted_at: float | None
    tally: dict[str, int] = field(default_factory=dict)
    refused_after: int = 0
    acked_after: list[int] = field(default_factory=list)
    """Canary writes the old leader acknowledged at or after the key was lost (client's view)."""
    stored_after: list[int] = field(default_factory=list)
    """Rows in the old leader's own table written at or after the key was lost (the server's view)."""
    lost: list[int] = field(default_factory=list)
    """Acknowledged canary writes the new leader does not hold."""
    rpo_s: float | None = None
    unacked_on_old: int = 0
    """Rows committed on the old leader whose commit the client never saw acknowledged (informative)."""
    reasons: list[str] = field(default_factory=list)

    @property
    def writes_after(self) -> list[int]:
        """Every write the old leader took after the key was lost, by the client's word or its own table."""
        return sorted(set(self.acked_after) | set(self.stored_after))

    def as_dict(self) -> dict[str, Any]:
        return {"isolated_at": self.isolated_at, "key_lost_at": self.key_lost_at, "demoted_at": self.demoted_at,
                "promoted_at": self.promoted_at, "attempts": self.tally, "refused_after_key_lost": self.refused_after,
                "acknowledged_after_key_lost": self.acked_after[:20], "stored_after_key_lost": self.stored_after[:20],
                "lost": self.lost[:50], "lost_count": len(self.lost), "unacknowledged_on_old": self.unacked_on_old}


def account(writes: Mapping[str, Any], isolation: Mapping[str, Any] | None) -> SplitBrainAccount:
    """Judge the probe's record (``writes``) against the partition the fault made (its ``details``).

    ``reasons`` lists why nothing can be claimed (see :func:`guard`); the lists are filled either way."""
    isolated_at = float(isolation["isolated_at"]) if isolation and isolation.get("isolated_at") else None
    promoted_at, demoted_at = writes.get("promoted_at"), writes.get("demoted_at")
    ttl = float(writes.get("ttl_s") or 0)
    bounds = [b for b in (promoted_at, isolated_at + ttl if isolated_at is not None else None) if b is not None]
    key_lost_at = min(bounds) if bounds else None
    attempts = [(int(s), float(t0), float(t1), str(o)) for s, t0, t1, o in writes.get("attempts") or []]
    acct = SplitBrainAccount(isolated_at, key_lost_at, demoted_at, promoted_at, _tally(
        [list(a) for a in attempts]))
    if isolated_at is None:
        acct.reasons.append(f"no {FAULT} in this run: nothing was isolated")
    if promoted_at is None:
        acct.reasons.append(f"{writes.get('candidate')} was never seen promoted: no failover happened")
    if isolation and isolation.get("member") and writes.get("member") and isolation["member"] != writes["member"]:
        acct.reasons.append(f"the probe wrote on {writes['member']} but {isolation['member']} was isolated")
    on_old = {int(s): float(w) for s, w in (writes.get("on_old") or {}).items()}
    acked = {s: t1 for s, _, t1, o in attempts if o == "acknowledged"}
    if key_lost_at is not None:
        acct.refused_after = sum(1 for _, t0, _, o in attempts if o == "refused" and t0 >= key_lost_at)
        acct.acked_after = sorted(s for s, t1 in acked.items() if t1 >= key_lost_at)
        acct.stored_after = sorted(s for s, w in on_old.items() if w >= key_lost_at)
        if acct.refused_after == 0:
            acct.reasons.append("no write was refused by the old leader after it lost its leader key: the writer "
                                "proved nothing about it")
    on_new = writes.get("on_new")
    if on_new is None:
        acct.reasons.append(f"the new leader's canary table could not be read: {writes.get('errors')}")
    else:
        held = set(on_new)
        acct.lost = sorted(s for s in acked if s not in held)
        if acct.lost:
            first = min(t0 for s, t0, _, _ in attempts if s in set(acct.lost))
            acct.rpo_s = round(max(acked[s] for s in acct.lost) - first, 3)
        else:
            acct.rpo_s = 0.0
    acct.unacked_on_old = sum(1 for s in on_old if s not in acked)
    return acct


def guard(acct: SplitBrainAccount) -> str:
    """Why the split-brain verdicts are inconclusive ("" when they can be judged)."""
    return "; ".join(acct.reasons)


def from_journal(journal: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The probe's output and the isolation fault's ``details`` from a Chaos Toolkit journal (``None`` each
    when absent or not succeeded)."""
    writes = isolation = None
    for r in journal.get("run", []):
        provider = (r.get("activity") or {}).get("provider") or {}
        if r.get("status") != "succeeded":
            continue
        if provider.get("func") == PROBE:
            writes = r.get("output")
        elif provider.get("func") == FAULT:
            isolation = (r.get("output") or {}).get("details")
    return writes, isolation
