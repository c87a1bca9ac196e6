"""ClickHouse down: the server is stopped, and started again on expiry or removal.

On an ``ha`` stack ``replica`` picks one of the two ClickHouse replicas.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import engine

__all__ = ["start_clickhouse", "stop_clickhouse"]


def stop_clickhouse(duration: float | None = None, replica: int | None = None,
                    configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Stop the ClickHouse server (graceful stop; SIGKILL after the stop timeout).

    Args:
        duration: seconds until a detached timer starts it again; ``null`` keeps it down until
            ``start_clickhouse``.
        replica: replica index (ha profile: 0 or 1; minimal: only 0); ``null`` means 0.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (pid stopped);
    on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: ClickHouse not RUNNING, stack not running (nothing is injected in these
            cases), or it did not stop within 60 s.
    """
    which = {"replica": replica} if replica is not None else {}  # backends without replicas keep working
    return engine.inject(__name__, "stop_clickhouse", {"duration": duration, **which},
                         "start_clickhouse", which, duration, configuration, secrets, instant=False)


def start_clickhouse(replica: int | None = None, configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Make sure ClickHouse is RUNNING and its native port accepts connections; idempotent.

    Args:
        replica: replica index (``null``: 0).

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: not RUNNING and ready within 120 s.
    """
    return engine.remove(__name__, "start_clickhouse", {"replica": replica} if replica is not None else {},
                         configuration, secrets)
