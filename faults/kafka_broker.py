"""Kafka broker loss.

Minimal profile: the single broker is stopped (a full Kafka outage: producers
buffer or fail, consumers stall). The HA profile runs three brokers and stops
one of them (``broker`` picks which), leaving a quorum; with replication factor 3
and ``min.insync.replicas=2`` acks=all producers keep going. On Kubernetes one
broker pod is deleted and its StatefulSet recreates it; with ``duration`` its StatefulSet is scaled
down by one for that long instead (docs/faults.md, "Holding a pod down").
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["start_kafka_broker", "stop_kafka_broker"]


def stop_kafka_broker(broker: int | None = None, duration: float | None = None, graceful: bool = True,
                      configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Stop a Kafka broker (controlled shutdown; SIGKILL after the stop timeout), or kill it.

    Args:
        broker: broker index; the minimal profile has only broker 0, the ha profile 0, 1 and 2
            (``null`` means 0). Kubernetes: the broker pod's ordinal (``kafka-1`` is 1), ``null`` a
            Ready one at random.
        duration: seconds until a detached timer starts it again; ``null`` keeps it down until
            ``start_kafka_broker``. Kubernetes: must be ``null`` (the pod is recreated at once).
        graceful: ``false``: SIGKILL instead of a controlled shutdown (a crashed broker); it stays
            down the same way.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (pid stopped);
    on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: unknown broker, broker not RUNNING (Kubernetes: any broker not Ready),
            stack not running, a duration on Kubernetes for a broker that is neither its StatefulSet's first
            nor its last ordinal (nothing is injected in these cases), or it
            did not stop within 60 s.
    """
    fault = "stop_kafka_broker"
    broker, duration = check.optional_index(fault, "broker", broker), check.duration(fault, duration)
    graceful = check.boolean(fault, "graceful", graceful)
    return engine.inject(__name__, "stop_kafka_broker", {"broker": broker, "duration": duration, "graceful": graceful},
                         "start_kafka_broker", {"broker": broker}, duration, configuration, secrets,
                         instant=False)  # killed or not, it stays down until started


def start_kafka_broker(broker: int | None = None, configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Make sure the Kafka broker is RUNNING and its listener accepts connections; idempotent.

    Args:
        broker: broker index (``null``: the minimal profile's only broker; Kubernetes: every broker pod).

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: unknown broker, or not RUNNING and ready within 120 s (Kubernetes:
            ``k8s_ready_timeout``).
    """
    broker = check.optional_index("start_kafka_broker", "broker", broker)
    return engine.remove(__name__, "start_kafka_broker", {"broker": broker}, configuration, secrets)
