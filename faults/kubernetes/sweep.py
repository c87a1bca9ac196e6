"""Revert what this library left in a cluster once its expiry has passed, without the journal.

``python -m faults.cli sweep`` (the Deployment ``resilience-sweeper`` of deploy/k8s/base runs it every 30 s)
calls :func:`sweep`. A runner killed in its pod takes its watchdog and expiry timers with it; what it left
then stays until the next run's cleanup container, a day for the nightly CronJob. The sweeper bounds that for
the faults that carry their expiry on the object (annotation ``sql-audit-resilience/expires-at``,
:mod:`faults.kubernetes.expiry`):

* partition NetworkPolicies of the service's namespace: deleted
  (:func:`faults.kubernetes.network_partition.expired_policies`, the rule ``remove_partition`` sweeps by);
* StatefulSets held down (:mod:`faults.kubernetes.hold`) in the service's namespace and those of Kafka and
  PostgreSQL (listed, as ``start_kafka_broker`` and ``restore_postgres`` find them), and
  ``k8s_clickhouse_statefulset`` (read by name, as ``start_clickhouse`` does): scaled back to the recorded count,
  the annotations dropped (:func:`faults.kubernetes.hold.restore`); it does not wait for the pods.

Nothing without an expiry is touched, nor anything before it. The journal is not read or closed (the sweeper
has no volume): the next run's ``cleanup`` calls each open entry's remove, which finds the fault gone and
succeeds. Every request goes through :mod:`faults.kubernetes.client` (guard, dry run, timeouts), as the
ServiceAccount of the runner: :data:`CALLS` is what it needs of the Role.
"""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaoslib.exceptions import ActivityFailed

from faults.kubernetes.client import Call, Kube
from faults.kubernetes.expiry import EXPIRES
from faults.kubernetes.hold import BEFORE, HELD_BY, expired_hold, restore
from faults.kubernetes.network_partition import expired_policies

__all__ = ["CALLS", "Sweep", "Swept", "hold_namespaces", "sweep", "sweep_with"]

logger = logging.getLogger(__name__)

CALLS = frozenset({
    Call("list", "networking.k8s.io", "networkpolicies"), Call("delete", "networking.k8s.io", "networkpolicies"),
    Call("list", "apps", "statefulsets"), Call("get", "apps", "statefulsets"), Call("patch", "apps", "statefulsets"),
})
"""Every API call a sweep can make (a subset of the Role's: tests/k8s and tests/cluster check it)."""

WHAT = "sweep expired faults"


@dataclass(frozen=True)
class Swept:
    """One expired object the sweep reverted (or, on a dry run, would revert), or failed to."""

    kind: str
    namespace: str
    name: str
    expires_at: str
    detail: str = ""
    error: str | None = None

    def line(self, dry_run: bool) -> str:
        """``reverted NetworkPolicy ns/name (expired at ...)``, as the command prints it."""
        mark = "FAILED" if self.error else ("would revert" if dry_run else "reverted")
        tail = f": {self.error}" if self.error else (f": {self.detail}" if self.detail else "")
        return f"{mark:<12} {self.kind} {self.namespace}/{self.name} (expired at {self.expires_at}){tail}"


@dataclass
class Sweep:
    """What one sweep did: the objects it reverted and the reads that failed (nothing swept there)."""

    swept: list[Swept]
    errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors and not any(s.error for s in self.swept)


def hold_namespaces(kube: Kube) -> tuple[list[str], tuple[str, str] | None]:
    """Where held StatefulSets are looked for: the namespaces listed (the service's, Kafka's, PostgreSQL's) and
    ``(namespace, k8s_clickhouse_statefulset)`` read by name when ClickHouse is elsewhere (its dependency Role
    grants get, not list), else ``None``."""
    settings = kube.settings
    listed = sorted({settings.namespace, settings.edges["kafka"].namespace, settings.edges["postgres"].namespace})
    clickhouse = settings.edges["clickhouse"].namespace
    return listed, (None if clickhouse in listed else (clickhouse, settings.clickhouse_statefulset))


def sweep_with(kube: Kube, now: float) -> Sweep:
    """:func:`sweep` with an open client, at time ``now``. A failed request is logged and kept in the result,
    and the sweep goes on with the rest."""
    out = Sweep([], [])
    ns = kube.settings.namespace
    try:
        policies = expired_policies(kube, now)
    except ActivityFailed as exc:
        logger.error("%s", exc)
        out.errors.append(str(exc))
        policies = []
    for policy in policies:
        name, stamp = policy.metadata.name, (policy.metadata.annotations or {}).get(EXPIRES, "")
        try:
            kube.delete_policy(ns, name)
            out.swept.append(Swept("NetworkPolicy", ns, name, stamp, "deleted"))
        except ActivityFailed as exc:
            logger.error("%s", exc)
            out.swept.append(Swept("NetworkPolicy", ns, name, stamp, error=str(exc)))
    listed, by_name = hold_namespaces(kube)
    candidates: list[tuple[str, Any]] = []
    for namespace in listed:
        try:
            candidates += [(namespace, s) for s in kube.list_statefulsets(namespace)]
        except ActivityFailed as exc:
            logger.error("%s", exc)
            out.errors.append(str(exc))
    if by_name is not None:
        try:
            sts = kube.read_statefulset(*by_name, missing_ok=True)
            candidates += [(by_name[0], sts)] if sts is not None else []
        except ActivityFailed as exc:
            logger.error("%s", exc)
            out.errors.append(str(exc))
    for namespace, sts in candidates:
        if not expired_hold(sts, now):
            continue
        annotations = sts.metadata.annotations
        name, stamp = sts.metadata.name, annotations.get(EXPIRES, "")
        try:
            count = restore(kube, namespace, sts, None, WHAT)
            out.swept.append(Swept("StatefulSet", namespace, name, stamp,
                                   f"replicas {sts.spec.replicas} -> {count} (held by {annotations[HELD_BY]}, "
                                   f"{BEFORE}={annotations[BEFORE]})"))
        except ActivityFailed as exc:
            logger.error("%s", exc)
            out.swept.append(Swept("StatefulSet", namespace, name, stamp, error=str(exc)))
    for s in out.swept:
        if not s.error:
            logger.info("%s %s %s/%s: expired at %s%s", "dry run: would revert" if kube.dry_run else "reverted",
                        s.kind, s.namespace, s.name, s.expires_at, f" ({s.detail})" if s.detail else "")
    return out


def sweep(configuration: dict[str, Any] | None = None, environ: Mapping[str, str] | None = None,
          now: float | None = None) -> Sweep:
    """Revert every object of this library whose expiry has passed (see the module doc) and nothing else.

    Args:
        configuration: settings over the target file's (``{"dry_run": True}``: send only reads).
        environ: the environment the settings model reads (default the process's; ``RESILIENCE_TARGET_CONFIG``
            names the target file).
        now: the time expiries are compared with (default: now).

    Returns the :class:`Sweep`. Raises ``ActivityFailed`` when no client can be made (settings, kubeconfig,
    the guard); failed requests are in the result instead.
    """
    with Kube(configuration, WHAT, environ) as kube:
        return sweep_with(kube, time.time() if now is None else now)
