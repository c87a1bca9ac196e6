"""Scale the audit service's replicas during a fault, as the guide's HorizontalPodAutoscaler would (3-10 replicas).

Not a failure but an action an operator (or the HPA, on ``kafka_consumer_lag``) takes *during* one: a
scale-out under a lag surge, whose effect on the recovery an experiment measures
(``experiments/consumer_lag_surge_scale_out.yaml``). It is journaled like a fault, so that the run's
rollback, the watchdog, ``resilience cleanup`` and the residue audit return the service to the count it
had. Locally the replicas are the supervisor programs ``audit-service-<i>`` of group ``audit-service``
(:mod:`stack.scale`); on Kubernetes the StatefulSet ``k8s_service_statefulset``, through its scale
subresource.

A run's fault window is its *first* fault's: put this action after the fault it answers.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["restore_replica_count", "scale_replicas"]

MIN_REPLICAS, MAX_REPLICAS = 3, 10
"""The guide's HorizontalPodAutoscaler bounds (§2.5: min 3, max 10 replicas)."""


def scale_replicas(to: int, duration: float | None = None, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Bring the audit service to ``to`` replicas (3..10, the guide's HPA bounds) while it runs.

    Locally new replicas are added to the running supervisor group (the others keep running), join the
    consumer group, and are scraped by Prometheus and probed by the pod-state exporter; removed ones
    (highest ordinals first) leave both, then stop gracefully. On Kubernetes: the StatefulSet's scale
    subresource, the count before kept in its annotation ``sql-audit-resilience/replicas-before``.

    Args:
        to: the replica count wanted, an integer in 3..10.
        duration: seconds until it scales back by itself (``null``: until ``restore_replica_count``).

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (``before``, ``after``,
    ``added``, ``removed``); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: ``to`` not an integer in 3..10, a bad duration, the stack not running or started
            before scaling existed (nothing is touched in these cases), or a replica that did not start
            (undone at once).
    """
    fault = "scale_replicas"
    to = check.integer(fault, "to", to, MIN_REPLICAS, MAX_REPLICAS,
                       bound="the guide's HorizontalPodAutoscaler: min 3, max 10 replicas")
    duration = check.duration(fault, duration)
    return engine.inject(__name__, "scale_replicas", {"to": to, "duration": duration}, "restore_replica_count", {},
                         duration, configuration, secrets, instant=False)


def restore_replica_count(configuration: Configuration | None = None,
                          secrets: Secrets | None = None) -> dict[str, Any]:
    """Return the audit service to the replica count it had before the first ``scale_replicas``; idempotent.

    Returns ``{"fault", "target", "reverted_entries", "details"}`` ("not scaled: nothing to restore" when
    no scale is recorded).

    Raises:
        ActivityFailed: the replicas could not be brought back (a program that would not stop, Prometheus
            not following, an API error).
    """
    return engine.remove(__name__, "restore_replica_count", {}, configuration, secrets)
