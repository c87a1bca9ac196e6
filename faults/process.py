"""Kill one supervised process (any program of the stack: ``kafka``, ``audit-service-0``...).

supervisord restarts a killed process, like the kubelet restarts a pod's
container; the remove makes sure the program is RUNNING and its port answers.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["kill_process", "restore_process"]


def kill_process(program: str, graceful: bool = False, duration: float | None = None,
                 configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Kill the supervised program ``program``.

    Args:
        program: supervisor program name (``kafka``, ``postgres``, ``audit-service-1``...).
        graceful: ``false`` (default): SIGKILL its process group, supervisord restarts it at
            once; ``true``: stop it with its stop signal (SIGTERM/SIGINT, SIGKILL after the
            stop timeout) and start it again (after ``duration`` if given).
        duration: graceful only: seconds it stays down before a detached timer starts it;
            ``null`` starts it again right away.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (pid killed);
    on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: unknown program, program not RUNNING, ``duration`` without ``graceful``,
            stack not running (nothing is injected in these cases), or the kill failed.
    """
    fault = "kill_process"
    program, graceful = check.name(fault, "program", program), check.boolean(fault, "graceful", graceful)
    duration = check.duration(fault, duration)
    check.only_with(fault, "duration", duration, graceful, "graceful=true",
                    "a SIGKILLed process is restarted at once, as the kubelet restarts a pod")
    return engine.inject(__name__, "kill_process", {"program": program, "graceful": graceful, "duration": duration},
                         "restore_process", {"program": program}, duration, configuration, secrets,
                         instant=not graceful)  # a SIGKILL is over at once; supervisord restarts


def restore_process(program: str, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Make sure ``program`` is RUNNING again and its port accepts connections; idempotent.

    Args:
        program: supervisor program name.

    Returns ``{"fault", "target", "reverted_entries", "details"}`` (``details.changed``: "started"
    or "was RUNNING").

    Raises:
        ActivityFailed: unknown program, or not RUNNING and ready within 120 s.
    """
    program = check.name("restore_process", "program", program)
    return engine.remove(__name__, "restore_process", {"program": program}, configuration, secrets)
