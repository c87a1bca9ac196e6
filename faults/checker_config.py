"""A configuration change that must take effect: a checker threshold changed, replicas restarted.

The troubleshooting guide's "configuration not taking effect" scenario: the new value is
written where the replicas read it (the local stack's ``conf/checkers.yaml``; a ConfigMap in
a cluster) and the replicas are restarted one at a time, each ready before the next, as a
rolling update does. ``/actuator/configprops`` on every replica then tells whether it took
effect (``probes.activities.config_in_effect``). The remove restores the original file and
restarts the replicas the same way. On Kubernetes the ConfigMap is patched and the StatefulSet
restarted as ``kubectl rollout restart`` does (faults/kubernetes/checker_config.py).
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["change_checker_threshold", "restore_checker_config"]


def change_checker_threshold(checker: str, field: str, value: float, group: str = "audit-service",
                             configuration: Configuration | None = None,
                             secrets: Secrets | None = None) -> dict[str, Any]:
    """Set ``<checker>.<field>`` to ``value`` in the replicas' checker config and roll the replicas.

    Args:
        checker: ``slow_query``, ``actual_impact``, ``error_rate`` or ``frequency``.
        field: a numeric field of that checker (``threshold_ms``, ``threshold_rows``...).
        value: the new value.
        group: supervisor group of the replicas.

    Returns ``fault_id``, ``run_id``, ``journal`` and ``details`` (old and new value, the
    restarts); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: unknown checker or field, a value the service would refuse, the stack
            not running (nothing injected), or a replica not ready again within 120 s.
    """
    fault = "change_checker_threshold"
    checker, field = check.name(fault, "checker", checker), check.name(fault, "field", field)
    value, group = check.number(fault, "value", value), check.name(fault, "group", group)
    return engine.inject(__name__, "change_checker_threshold",
                         {"checker": checker, "field": field, "value": value, "group": group},
                         "restore_checker_config", {"group": group}, None, configuration, secrets, instant=False)


def restore_checker_config(group: str = "audit-service", configuration: Configuration | None = None,
                           secrets: Secrets | None = None) -> dict[str, Any]:
    """Put the original checker config back and roll the replicas; idempotent ("nothing changed" is success).

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: the file could not be restored, or a replica is not ready within 120 s.
    """
    group = check.name("restore_checker_config", "group", group)
    return engine.remove(__name__, "restore_checker_config", {"group": group}, configuration, secrets)
