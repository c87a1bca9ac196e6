"""Approximate packet loss between the audit service and one of its dependencies.

toxiproxy works on TCP streams and has no packet-loss toxic. Loss is
approximated by a ``timeout`` toxic with toxicity ``loss_percent/100``: that
share of the connections is black-holed (no data passes; with ``timeout_ms`` > 0
they are closed after that time), the others are untouched. For TCP clients
this is what heavy loss looks like (stalls, retransmission timeouts, resets),
but it is per connection, not per packet: a client with one long-lived
connection is either fully hit or not at all. On Kubernetes a Chaos Mesh NetworkChaos ``loss``
drops that share of *packets* (``tc netem``); ``timeout_ms`` must stay 0 there.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["add_packet_loss", "remove_packet_loss"]


def add_packet_loss(edge: str, loss_percent: float, stream: str = "downstream", timeout_ms: int = 0,
                    duration: float | None = None, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Black-hole ``loss_percent`` % of the connections between the audit service and ``edge``.

    Args:
        edge: ``kafka``, ``postgres`` or ``clickhouse`` (every member's proxy on the ``ha`` profile),
            or one member's proxy (``kafka_2``, ``postgres_2``, ``clickhouse_2``).
        loss_percent: share of connections hit, in (0, 100] (toxiproxy toxicity).
        stream: ``downstream`` (default), ``upstream`` or ``both`` (each direction draws separately).
        timeout_ms: close a hit connection after this many ms (an integer >= 0); 0 (default) keeps it
            hanging. Kubernetes: must be 0.
        duration: seconds until removed by itself (detached timer); ``null`` keeps it until
            ``remove_packet_loss``.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details``; on a dry run
    ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: unknown edge or stream, bad numbers, loss already on the edge, toxiproxy
            unreachable or Chaos Mesh missing (nothing is injected in these cases), or the apply failed
            (undone at once).
    """
    fault = "add_packet_loss"
    edge, stream = check.edge(fault, edge), check.stream(fault, stream)
    loss_percent = check.percentage(fault, "loss_percent", loss_percent)
    timeout_ms = check.integer(fault, "timeout_ms", timeout_ms, 0)
    duration = check.duration(fault, duration)
    return engine.inject(__name__, "add_packet_loss",
                         {"edge": edge, "loss_percent": loss_percent, "stream": stream, "timeout_ms": timeout_ms,
                          "duration": duration},
                         "remove_packet_loss", {"edge": edge}, duration, configuration, secrets, instant=False)


def remove_packet_loss(edge: str, configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Remove the packet loss this library added on ``edge``; idempotent (none there is success).

    Args:
        edge: ``kafka``, ``postgres`` or ``clickhouse`` (every member's proxy on the ``ha`` profile),
            or one member's proxy (``kafka_2``, ``postgres_2``, ``clickhouse_2``).

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: unknown edge, or toxiproxy unreachable while the stack runs.
    """
    edge = check.edge("remove_packet_loss", edge)
    return engine.remove(__name__, "remove_packet_loss", {"edge": edge}, configuration, secrets)
