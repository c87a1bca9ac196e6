"""Helpers shared by the pod-killing backends (replicas, process)."""

from chaoslib.exceptions import ActivityFailed


def no_duration(duration: float | None, what: str) -> None:
    """Kubernetes controllers recreate a deleted pod at once: a down-time ``duration`` cannot be honoured."""
    if duration is not None:
        raise ActivityFailed(f"{what}: duration is not supported on kubernetes (the pod's controller recreates "
                             "it at once); leave duration null")
