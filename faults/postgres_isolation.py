"""Split-brain attempt: the PostgreSQL leader isolated by a network partition, not killed.

A real partition leaves the old leader running: it still has its data, its open sessions and
whatever clients are on its side of the cut. What must save the cluster is Patroni: a leader
that cannot renew its leader key in the DCS (etcd), and cannot reach the other member to keep it
in failsafe mode, demotes itself to a read-only standby before the key expires; only then may the
other member win the race and be promoted. This fault makes that partition happen and leaves the
proving to the probe :func:`probes.splitbrain.split_brain_writes` (writes attempted on the old
leader the whole time, refused or acknowledged, and where each acknowledged one ended up).

Local target, ``ha`` profile only: each Patroni member reaches etcd, and the other member's
PostgreSQL and REST API, through its own toxiproxy proxies (``dcs_pg1``, ``peer_pg2``,
``api_pg2``...; :meth:`stack.endpoints.Endpoints.patroni_proxies`), so the leader is cut from the
DCS and from its replica exactly as a partition would, while it keeps running. Kubernetes: refused
(a partition of one Patroni pod from the others and from the DCS needs NetworkPolicies on the
database's namespace, which this suite does not manage).
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["heal_postgres_leader", "isolate_postgres_leader"]

CLIENTS = ("keep", "cut")
"""``keep``: the audit service is on the old leader's side of the partition (its proxy to that member
stays up: it keeps writing there until Patroni demotes it, the worst case for the RPO); ``cut``: the
service is on the other side (its proxy to the old leader is cut too)."""
MODES = ("blackhole", "refuse")
"""``blackhole``: bytes stop flowing on open and new connections (toxiproxy ``timeout`` toxics, timeout 0),
like dropped packets; ``refuse``: the proxies are disabled (connections closed, new ones refused)."""
SYNCHRONOUS = ("keep", "on", "off")
"""Patroni's ``synchronous_mode`` during the fault: ``keep`` the stack's, or switch it ``on``/``off`` first
(the heal puts the previous value back)."""


def isolate_postgres_leader(clients: str = "keep", synchronous: str = "keep", mode: str = "blackhole",
                            duration: float | None = None, configuration: Configuration | None = None,
                            secrets: Secrets | None = None) -> dict[str, Any]:
    """Cut the current Patroni leader off from etcd and from the other member, without stopping it.

    Args:
        clients: ``keep`` (default): the audit service stays on the old leader's side of the partition;
            ``cut``: the service's proxy to the old leader is cut too.
        synchronous: Patroni's ``synchronous_mode`` for the fault: ``keep`` (default), ``on`` or ``off``
            (set through the REST API before the cut, and waited for; the heal restores the old value).
        mode: ``blackhole`` (default): packets dropped; ``refuse``: connections refused.
        duration: seconds until the partition heals by itself (a detached timer, even if the runner
            dies); ``null`` keeps it until :func:`heal_postgres_leader`.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (``member``: the isolated
    leader, ``candidate``, ``isolated_at``, ``synchronous_mode``, the proxies cut); on a dry run
    ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: unknown argument, not the ha profile, no leader or no streaming standby, a proxy
            already cut, the kubernetes target (nothing is injected in these cases).
    """
    fault = "isolate_postgres_leader"
    clients = check.choice(fault, "clients", clients, CLIENTS)
    synchronous = check.choice(fault, "synchronous", synchronous, SYNCHRONOUS)
    mode = check.choice(fault, "mode", mode, MODES)
    duration = check.duration(fault, duration)
    return engine.inject(__name__, "isolate_postgres_leader",
                         {"clients": clients, "synchronous": synchronous, "mode": mode, "duration": duration},
                         "heal_postgres_leader", {}, duration, configuration, secrets, instant=False)


def heal_postgres_leader(configuration: Configuration | None = None,
                         secrets: Secrets | None = None) -> dict[str, Any]:
    """Heal the partition of :func:`isolate_postgres_leader`; idempotent.

    Removes this fault's toxics from the Patroni members' proxies and the service's PostgreSQL proxies
    and enables them, puts back the ``synchronous_mode`` the fault changed, then waits until a leader
    runs and the other member streams again (the old leader rejoins as a replica, rewound with
    ``pg_rewind`` if it had diverged). A healthy cluster (or a stopped stack) is success.

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: toxiproxy or Patroni unreachable, or no leader and streaming replica within 120 s.
    """
    return engine.remove(__name__, "heal_postgres_leader", {}, configuration, secrets)
