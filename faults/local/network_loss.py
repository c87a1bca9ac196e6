"""Local backend of :mod:`faults.network_loss`: toxiproxy ``timeout`` toxics with toxicity < 1."""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults.local import _toxics
from target.settings import resolve

PREFIX = "chaos-loss"


def add_packet_loss(edge: str, loss_percent: float, stream: str = "downstream", timeout_ms: int = 0,
                    duration: float | None = None, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_loss.add_packet_loss`."""
    settings = resolve(configuration)
    what = f"packet loss audit-service<->{edge}"
    return _toxics.add(settings, edge, PREFIX, "timeout", stream, {"timeout": timeout_ms},
                       loss_percent / 100.0, what)


def remove_packet_loss(edge: str, configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_loss.remove_packet_loss`."""
    return _toxics.remove(resolve(configuration), edge, PREFIX,
                          f"remove packet loss audit-service<->{edge}")
