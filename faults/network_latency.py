"""Added latency between the audit service and one of its dependencies.

Local target: toxiproxy ``latency`` toxics on the edge's proxies. Kubernetes: a Chaos Mesh
NetworkChaos ``delay`` (Chaos Mesh must be installed).
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["add_latency", "remove_latency"]


def add_latency(edge: str, latency_ms: int, jitter_ms: int = 0, stream: str = "downstream",
                duration: float | None = None, configuration: Configuration | None = None,
                secrets: Secrets | None = None) -> dict[str, Any]:
    """Delay the traffic between the audit service and ``edge``.

    Args:
        edge: ``kafka``, ``postgres`` or ``clickhouse`` (every member's proxy on the ``ha`` profile),
            or one member's proxy (``kafka_2``, ``postgres_2``, ``clickhouse_2``).
        latency_ms: delay added to every chunk of data, in whole milliseconds (>= 1).
        jitter_ms: random +/- variation of that delay, in whole milliseconds (0..latency_ms).
        stream: ``downstream`` (dependency -> service, the default), ``upstream``
            (service -> dependency) or ``both`` (the delay is added each way).
        duration: seconds until the latency is removed by itself (detached timer);
            ``null`` keeps it until ``remove_latency``.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (toxics added);
    on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: unknown edge or stream, bad numbers, latency already on the edge, toxiproxy
            unreachable or Chaos Mesh missing (nothing is injected in these cases), or the apply failed
            (undone at once).
    """
    fault = "add_latency"
    edge, stream = check.edge(fault, edge), check.stream(fault, stream)
    latency_ms = check.integer(fault, "latency_ms", latency_ms, 1)
    jitter_ms = check.integer(fault, "jitter_ms", jitter_ms, 0, latency_ms, "latency_ms")
    duration = check.duration(fault, duration)
    return engine.inject(__name__, "add_latency",
                         {"edge": edge, "latency_ms": latency_ms, "jitter_ms": jitter_ms, "stream": stream,
                          "duration": duration},
                         "remove_latency", {"edge": edge}, duration, configuration, secrets, instant=False)


def remove_latency(edge: str, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Remove the latency this library added on ``edge``; idempotent (none there is success).

    Args:
        edge: ``kafka``, ``postgres`` or ``clickhouse`` (every member's proxy on the ``ha`` profile),
            or one member's proxy (``kafka_2``, ``postgres_2``, ``clickhouse_2``).

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: unknown edge, or toxiproxy unreachable while the stack runs.
    """
    edge = check.edge("remove_latency", edge)
    return engine.remove(__name__, "remove_latency", {"edge": edge}, configuration, secrets)
