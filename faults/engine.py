"""What every fault activity does around its backend: target dispatch, dry run, journal, expiry.

A public activity (``faults/<fault>.py``) checks its arguments (:mod:`faults.arguments`) and
calls :func:`inject` or :func:`remove` with its own name and the normalised arguments. Both pick
the backend module ``faults/<target>/<fault>.py`` from ``configuration["target"]`` and call the
function of the same name and signature there (a test keeps the signatures equal). :func:`inject` then:

1. calls the backend with ``dry_run: true`` first: it checks what needs the system
   (the program exists, the edge is not partitioned already) and raises before anything changed;
2. stops there on a dry run (logs and returns the plan);
3. records the fault in the journal (status ``applying``) *before* applying it,
   starts this process's heartbeat and makes sure the run's watchdog lives;
4. applies it; on failure runs the undo at once and marks the entry ``failed``;
5. marks the entry ``active`` and, with a ``duration``, starts a detached
   expiry timer that reverts it on time even if this process dies.

:func:`remove` calls the backend's idempotent remove and closes every journal
entry on the same stack whose undo is that very call.
"""

import importlib
import logging
import os
from types import ModuleType
from typing import Any

from chaoslib.exceptions import ActivityFailed

from faults import journal, killswitch, watchdog
from target.settings import TargetSettings, resolve

logger = logging.getLogger(__name__)


def backend(target: str, fault: str) -> ModuleType:
    """The module implementing ``fault`` for ``target``; ``ActivityFailed`` if the target has none."""
    name = f"faults.{target}.{fault}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (name, f"faults.{target}"):
            raise ActivityFailed(f"fault {fault!r} has no {target!r} backend (module {name} missing); "
                                 f"use configuration target: local (docs/faults.md)") from exc
        raise


def _impl(settings: TargetSettings, module: str, function: str) -> Any:
    fault = module.rsplit(".", 1)[-1]
    impl = getattr(backend(settings.target, fault), function, None)
    if impl is None:
        raise ActivityFailed(f"{settings.target} backend of fault {fault!r} lacks {function}()")
    return impl


def inject(module: str, function: str, arguments: dict[str, Any], undo_function: str,
           undo_arguments: dict[str, Any], duration: float | None,
           configuration: dict[str, Any] | None, secrets: dict[str, Any] | None, *, instant: bool) -> dict[str, Any]:
    """Apply the fault ``module.function(**arguments)`` with journal, dry run and expiry (see module doc).

    ``instant``: the fault is over the moment it happens (a SIGKILL, an OOM kill: what follows is
    recovery), so its fault window ends where it starts (:func:`faults.journal.fault_window`); the
    public activity decides it from its own arguments.

    Returns ``{"fault_id", "run_id", "fault", "target", "parameters", "expires_at", "journal", "details"}``
    or, on a dry run, ``{"dry_run": True, "fault", "target", "plan"}``. Raises ``ActivityFailed``.
    """
    settings = resolve(configuration)
    fault = module.rsplit(".", 1)[-1]
    impl, plan, dry = _plan(settings, module, function, arguments, configuration, secrets)
    if dry is not None:
        return dry

    undo = {"activity": f"{module}.{undo_function}", "arguments": undo_arguments}
    path, entry = journal.new_entry(settings, f"{module}.{function}", arguments, undo, duration, plan,
                                    instant=instant)
    journal.start_heartbeat(settings)
    if settings.watchdog:
        watchdog.ensure_watchdog(settings)
    real = {**(configuration or {}), "dry_run": False}
    try:
        details = impl(**arguments, configuration=real, secrets=secrets)
    except BaseException as exc:
        logger.warning("%s.%s(%s) failed (%s); undoing with %s", fault, function, _args(arguments), exc,
                       undo_function)
        try:
            remove(module, undo_function, undo_arguments, real, secrets)
        except Exception as undo_exc:
            journal.update(path, status="active", error=f"apply: {exc}; undo: {undo_exc}")
            raise ActivityFailed(f"{fault}.{function} failed ({exc}) and its undo failed too ({undo_exc}); "
                                 f"run `resilience cleanup --run {settings.run_id}`") from exc
        journal.update(path, status="failed", error=str(exc))
        raise
    timer = watchdog.spawn_timer(path) if duration else None
    journal.update(path, status="active", details=details, timer=timer)
    logger.info("injected %s: %s(%s) on %s stack %s%s [journal %s]", fault, function, _args(arguments),
                settings.target, settings.stack_port_base, f", expires in {duration:g} s" if duration else "",
                entry["id"])
    return {"fault_id": entry["id"], "run_id": settings.run_id, "fault": fault, "target": settings.target,
            "parameters": arguments, "expires_at": entry["expires_at_iso"], "journal": str(path),
            "details": details}


def _plan(settings: TargetSettings, module: str, function: str, arguments: dict[str, Any],
          configuration: dict[str, Any] | None, secrets: dict[str, Any] | None
          ) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """The backend's function, its dry-run plan, and the answer of a dry run (``None`` on a real run).

    Every call is planned first (its checks run, nothing is touched); a real one is refused while the kill
    switch is on."""
    fault = module.rsplit(".", 1)[-1]
    impl = _impl(settings, module, function)
    plan = impl(**arguments, configuration={**(configuration or {}), "dry_run": True}, secrets=secrets)
    if settings.dry_run:
        logger.info("dry run: %s.%s(%s) would: %s", fault, function, _args(arguments), plan.get("would", plan))
        return impl, plan, {"dry_run": True, "fault": fault, "target": settings.target, "parameters": arguments,
                            "plan": plan}
    killswitch.refuse_if_halted(settings, f"{fault}.{function}")
    return impl, plan, None


def act(module: str, function: str, arguments: dict[str, Any], configuration: dict[str, Any] | None,
        secrets: dict[str, Any] | None) -> dict[str, Any]:
    """Run an action that leaves nothing to undo (a backup): the backend's dry run first, then the action.

    Not journaled (there is no undo, and the fault window of the run is its faults'), but refused while
    the kill switch is on. Returns what the backend returned or, on a dry run, ``{"dry_run": True, ...}``.
    """
    settings = resolve(configuration)
    fault = module.rsplit(".", 1)[-1]
    impl, _, dry = _plan(settings, module, function, arguments, configuration, secrets)
    if dry is not None:
        return dry
    details: dict[str, Any] = impl(**arguments, configuration={**(configuration or {}), "dry_run": False},
                                   secrets=secrets)
    logger.info("%s: %s(%s) on %s stack %s: %s", fault, function, _args(arguments), settings.target,
                settings.stack_port_base, details.get("changed", ""))
    return details


def remove(module: str, function: str, arguments: dict[str, Any], configuration: dict[str, Any] | None,
           secrets: dict[str, Any] | None) -> dict[str, Any]:
    """Undo a fault with the backend's idempotent ``module.function(**arguments)`` and close its entries.

    Returns ``{"fault", "target", "reverted_entries", "details"}`` (``details`` says what was found and
    changed; "already gone" is success) or, on a dry run, ``{"dry_run": True, ...}``.
    Raises ``ActivityFailed`` when the fault could not be removed.
    """
    settings = resolve(configuration)
    fault = module.rsplit(".", 1)[-1]
    impl = _impl(settings, module, function)
    details = impl(**arguments, configuration=configuration, secrets=secrets)
    if settings.dry_run:
        logger.info("dry run: %s.%s(%s) would: %s", fault, function, _args(arguments), details.get("would", details))
        return {"dry_run": True, "fault": fault, "target": settings.target, "plan": details}
    undo = {"activity": f"{module}.{function}", "arguments": arguments}
    closed = journal.mark_reverted(settings, undo, by=journal.reverter() or f"{function} (pid {os.getpid()})")
    watchdog.stop_timers(settings, closed)
    logger.info("removed %s: %s(%s) on %s stack %s: %s; journal entries closed: %s", fault, function,
                _args(arguments), settings.target, settings.stack_port_base, details.get("changed", details),
                ", ".join(closed) or "none")
    return {"fault": fault, "target": settings.target, "reverted_entries": closed, "details": details}


def _args(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())
