"""Local backend of :mod:`faults.process`: SIGKILL or stop one supervised program."""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults.local.processes import Programs, start_again, stop_for
from target.settings import resolve


def kill_process(program: str, graceful: bool = False, duration: float | None = None,
                 configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.process.kill_process`."""
    settings = resolve(configuration)
    what = f"kill process {program}"
    if graceful:
        result = stop_for(settings, program, what)
        if not settings.dry_run and duration is None:
            restarted = start_again(settings, program, what)
            result["changed"] = f"{result['changed']}, started again ({restarted['changed']})"
        return result
    programs = Programs(settings)
    info = programs.running_info(program, what)
    if settings.dry_run:
        return {"would": f"SIGKILL {program} (pid {info['pid']}) via {programs.where}", "program": program}
    pid = programs.kill(program)
    return {"program": program, "pid": pid, "changed": f"SIGKILL pid {pid}; supervisord restarts it"}


def restore_process(program: str, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.process.restore_process`."""
    return start_again(resolve(configuration), program, f"restore process {program}")
