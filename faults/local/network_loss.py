"""Local backend of :mod:`faults.network_loss`: toxiproxy ``timeout`` toxics with toxicity < 1."""

from typing import Any

from chaoslib.exceptions import ActivityFailed
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
    if isinstance(loss_percent, bool) or not isinstance(loss_percent, int | float) or not 0 < loss_percent <= 100:
        raise ActivityFailed(f"{what}: loss_percent={loss_percent!r} must be a number in (0, 100]")
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms < 0:
        raise ActivityFailed(f"{what}: timeout_ms={timeout_ms!r} must be an integer >= 0")
    return _toxics.add(settings, edge, PREFIX, "timeout", stream, {"timeout": timeout_ms},
                       float(loss_percent) / 100.0, what)


def remove_packet_loss(edge: str, configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_loss.remove_packet_loss`."""
    return _toxics.remove(resolve(configuration), edge, PREFIX,
                          f"remove packet loss audit-service<->{edge}")
