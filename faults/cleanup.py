"""Undo what a killed runner left: revert every open fault in the journal.

``resilience cleanup [--port-base N | --run ID | --all]`` (see :mod:`faults.cli`, which
scopes a bare ``cleanup`` to the default local stack) calls :func:`cleanup`.
Each open entry is reverted by calling the remove activity recorded in its
``undo`` with the configuration recorded with it (same target, stack and
journal); remove activities are idempotent, so reverting twice, or reverting
what a timer already reverted, is harmless.
"""

import importlib
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from faults import UNDO_ACTIVITIES, journal
from target.settings import resolve

logger = logging.getLogger(__name__)

RENAMED = {"faults.config": "faults.checker_config"}
"""Fault modules by their old name, so an entry journaled before a rename is still reverted."""


@dataclass
class Reverted:
    """Outcome of reverting one journal entry."""

    id: str
    run_id: str
    fault: str
    parameters: dict[str, Any]
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_state_dir() -> Path:
    """The journal directory when none is given (the settings model's ``fault_state_dir``)."""
    return resolve().fault_state_dir


def revert_entry(path: Path, entry: journal.Entry, by: str) -> Reverted:
    """Run the undo recorded in ``entry`` and close it; never raises (the result says what happened)."""
    undo = entry.get("undo") or {}
    activity = str(undo.get("activity", ""))
    mod_name, _, func_name = activity.rpartition(".")
    mod_name = RENAMED.get(mod_name, mod_name)
    result = Reverted(id=str(entry.get("id")), run_id=str(entry.get("run_id")), fault=str(entry.get("fault")),
                      parameters=dict(entry.get("parameters") or {}), ok=False, detail="")
    if f"{mod_name}.{func_name}" not in UNDO_ACTIVITIES:
        result.detail = f"journal entry {path} has no usable undo ({activity!r}); revert it by hand"
        logger.error("%s", result.detail)
        return result
    configuration = {**entry.get("configuration", {}), "dry_run": False, "watchdog": False}
    try:
        func = getattr(importlib.import_module(mod_name), func_name)
        with journal.reverting_as(by):
            outcome = func(**undo.get("arguments", {}), configuration=configuration)
    except Exception as exc:
        result.detail = f"{activity}({undo.get('arguments')}) failed: {exc}"
        journal.update(path, last_revert_error=result.detail, last_revert_at=time.time())
        logger.error("reverting %s (%s) failed: %s", result.id, result.fault, exc)
        return result
    journal.close(path, by)
    result.ok = True
    result.detail = str(outcome.get("details", {}).get("changed", "reverted"))
    logger.info("reverted %s (%s %s) by %s: %s", result.id, result.fault, result.parameters, by, result.detail)
    return result


def cleanup(state_dir: Path | None = None, run_id: str | None = None, port_base: int | None = None,
            dry_run: bool = False, spare: set[str] | frozenset[str] = frozenset()) -> list[Reverted]:
    """Revert every open fault in the journal, or only those of ``run_id`` and/or stack ``port_base``.

    Args:
        state_dir: journal directory (default: env ``RESILIENCE_STATE_DIR`` or
            ``/var/tmp/sql-audit-resilience/faults``).
        run_id: only this run's faults.
        port_base: only faults applied to the local stack at this port base (``None``: every stack,
            local and kubernetes; the CLI passes one unless told ``--all`` or ``--run``).
        dry_run: list what would be reverted and change nothing.
        spare: runs whose faults are left alone (runs still at work, :func:`faults.companions.live_runs`).

    Returns one :class:`Reverted` per open entry (``ok`` false where the undo failed; the entry then
    stays open so a later cleanup retries). Raises nothing for a failed undo; ``OSError`` if the
    journal cannot be read.
    """
    state = state_dir or default_state_dir()
    results = []
    for path, entry in journal.open_entries(state, run_id, port_base):
        if entry.get("run_id") in spare:
            continue
        if dry_run:
            results.append(Reverted(id=str(entry["id"]), run_id=str(entry["run_id"]), fault=str(entry["fault"]),
                                    parameters=dict(entry.get("parameters") or {}), ok=True,
                                    detail=f"would call {entry['undo']['activity']}({entry['undo']['arguments']})"))
            continue
        current = journal.read(path)
        if current is None or current.get("status") not in journal.OPEN:
            continue  # an earlier undo in this loop closed it too (same undo)
        results.append(revert_entry(path, entry, by=f"cleanup (pid {os.getpid()})"))
    return results
