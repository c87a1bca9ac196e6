"""The residue audit of one run and its verdict, ``residue``: is the target back where it started?

The runner calls :func:`begin` right before the experiment and :func:`end` after its own final
clean-up (load stopped, open faults reverted). In between, the snapshots and their diff are
:mod:`faults.residue`'s; this module ties them to the run:

* :func:`begin` snapshots the target, refuses to start (:class:`RunError`) when this library's
  own leftovers are on it (a toxic, a NetworkPolicy, a changed config, an open fault, a process of
  a dead run: a verdict on such a target could not be trusted), keeps the snapshot in the fault
  journal for ``resilience cleanup``, and registers the run's load generator with the run's
  watchdog (:mod:`faults.companions`), which it starts: should the runner die, the watchdog
  reverts its faults and stops its load;
* :func:`end` tells the watchdog the run is over, waits (bounded) until the target matches the
  snapshot from before, and writes ``residue.json`` into the run directory: both snapshots and
  the findings;
* :func:`residue_verdict` turns ``residue.json`` into the verdict, live and offline alike: FAIL
  naming every leftover, PASS when there is none, INCONCLUSIVE when the audit did not complete.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faults import companions, watchdog
from faults import residue as audit
from probes.verdict import Outcome, Verdict
from resilience.plan import RunError, RunPlan
from resilience.rundir import RunDirectory, read_json
from target.settings import TargetSettings

logger = logging.getLogger(__name__)

FILE = "residue.json"
SLO = "residue"


@dataclass
class Guard:
    """What :func:`begin` took and set up, for :func:`end`."""

    rd: RunDirectory
    settings: TargetSettings
    before: audit.Snapshot


def run_settings(p: RunPlan, rd: RunDirectory) -> TargetSettings:
    """The target's settings with this run's id and load directory (the faults of the run use the same)."""
    return p.settings.model_copy(update={"run_id": rd.run_id, "load_dir": rd.load_dir})


def begin(p: RunPlan, rd: RunDirectory) -> Guard:
    """Snapshot the target before the experiment and put the run under its watchdog (see module doc).

    Raises :class:`RunError` (nothing injected) when the target carries this library's leftovers.
    """
    from loadtests import locust_process

    settings = run_settings(p, rd)
    before = audit.snapshot(settings)
    found = audit.library_leftovers(before)
    if found:
        where = (f"--port-base {settings.stack_port_base}" if settings.is_local else "--all")
        raise RunError(f"the target is not at rest before the run: {'; '.join(map(str, found))}. "
                       f"Run `resilience cleanup {where}` (or remove them by hand) first")
    rd.write(FILE, {"format": audit.FORMAT, "before": before, "after": None, "audit": None})
    audit.save_before(settings, before)
    companions.register(settings, "load", rd.load_dir / locust_process.HANDLE_FILE,
                        rd.load_dir / locust_process.STOP_FILE, "locust")
    if settings.watchdog:
        watchdog.ensure_watchdog(settings)
    logger.info("residue audit: target snapshot taken in %.1f s (%s)", before.get("took_s", 0),
                ", ".join(k for k, v in before["items"].items() if v is not None))
    return Guard(rd, settings, before)


def end(guard: Guard, timeout: float = audit.SETTLE_TIMEOUT_S) -> audit.Audit:
    """After the runner's final clean-up: wait until the target is back (bounded), record what is not."""
    companions.finish(guard.settings)
    after, found, waited = audit.settle(guard.settings, guard.before, timeout)
    guard.rd.write(FILE, {"format": audit.FORMAT, "before": guard.before, "after": after,
                          "audit": found.as_dict(), "waited_s": round(waited, 1)})
    if found.leftovers:
        logger.error("residue: the target is not back where it started after %.0f s: %s", waited, found.describe())
    else:
        logger.info("residue audit: target back where it started (%.1f s; %s)", waited,
                    "; ".join(map(str, found.notes)) or "no change")
    return found


def residue_verdict(run_dir: Path, run: dict[str, Any]) -> Verdict | None:
    """The ``residue`` verdict from the run directory's ``residue.json`` (``None`` for a run recorded before the
    audit existed: its run.json does not name the file)."""
    if run.get("residue") != FILE:
        return None
    data = read_json(run_dir / FILE)
    found = (data or {}).get("audit")
    if not found:
        why = "no snapshot from before the experiment" if not data else "the run ended before its audit"
        return Verdict(SLO, Outcome.INCONCLUSIVE, None, "== 0", "leftovers",
                       f"residue audit did not complete ({why}): nothing proves the target is back")
    leftovers = [str(f["text"]) for f in found.get("leftovers") or []]
    notes = [str(f["text"]) for f in found.get("notes") or []]
    details = {"leftovers": leftovers, "notes": notes, "reference": found.get("reference"),
               "waited_s": data.get("waited_s") if data else None}
    if leftovers:
        return Verdict(SLO, Outcome.FAIL, float(len(leftovers)), "== 0", "leftovers",
                       f"the target is not back where it started: {'; '.join(leftovers)}", details)
    return Verdict(SLO, Outcome.PASS, 0.0, "== 0", "leftovers", "", details)
