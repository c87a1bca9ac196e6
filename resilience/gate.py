"""``resilience gate``: the catalogue (or a tagged subset) as a pre-release gate, one verdict for CI.

Runs each selected experiment with :func:`resilience.runner.run` (through a caller-supplied
function, so the CLI can show its progress), keeps every run's result object, and writes
``gate-<time>/`` with one run directory per scenario, ``index.html`` and ``junit.xml``. A scenario
that could not even start is in both as inconclusive, never left out.

Between experiments the gate *settles* the target (``settle``): on the local stack, when the run before
left it unhealthy (a replica still starting, an open fault, a stopped process), it reverts this stack's open
faults and waits for every component to come back (:func:`settle_local`), so one broken scenario does
not turn every later one into "did not start". What it did is logged and kept in ``GateResult.settled``;
the scenario that left the stack so is judged on its own residue, never excused.

Exit code: 0 every scenario passed, 1 any SLO failed, 2 otherwise inconclusive or an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from resilience.baseline import finish_gate
from resilience.experiments import EXPERIMENTS_DIR, Experiment, catalogue
from resilience.plan import DEFAULT_REPORTS, NotApplicable, RunError, RunOptions
from resilience.report import ScenarioResult, render_index, write_junit
from resilience.runner import RunInterrupted, RunResult
from resilience.trials import run_trials
from stack.endpoints import DEFAULT_PORT_BASE

logger = logging.getLogger(__name__)

__all__ = ["GateOptions", "GateResult", "exit_code", "run_gate", "select"]

RunOne = Callable[[RunOptions], RunResult]
"""Runs one experiment and returns its result; raises :class:`RunError` when it cannot start."""

Settle = Callable[[RunOptions], str | None]
"""Before an experiment that follows another: bring the target back to health, say what was done (``None``:
nothing was needed); raise :class:`RunError` when it cannot (the experiment then does not start)."""


@dataclass
class GateOptions:
    tags: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    profile: str = "minimal"
    target: str = "local"
    port_base: int = DEFAULT_PORT_BASE
    data_dir: Path | None = None
    reports_dir: Path = DEFAULT_REPORTS
    junit_path: Path | None = None
    repeat: int | None = None
    """Trials per experiment (default: each experiment's ``repeat``, 1 unless it says otherwise)."""
    baseline: str | None = None
    """Compare with this baseline from the history (:mod:`resilience.baseline`)."""
    secure: bool = False
    """Start the local stack with ``--secure`` (SASL_SSL Kafka, ClickHouse passwords; :mod:`stack.security`)."""
    abort_if: tuple[str, ...] = ()
    service: str | None = None
    """``python`` or ``spring`` (default: the local stack's, else python)."""
    catalogue_dir: Path = EXPERIMENTS_DIR
    """Where the experiments are (``--catalogue``): the suite's ``experiments/``, or a team's own."""
    rate: float | None = None
    """Base load of every experiment, events/s (``--rate``; default: each experiment's own)."""


@dataclass
class GateResult:
    gate_dir: Path
    results: list[ScenarioResult]
    skipped: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    """What the gate did to the target between experiments, one line each."""
    interrupted: str | None = None
    """Why the gate stopped early (Ctrl-C or SIGTERM during that experiment): the rest did not start."""

    @property
    def exit_code(self) -> int:
        return exit_code([r.gate_exit_code for r in self.results])

    @property
    def index(self) -> Path:
        return self.gate_dir / "index.html"

    @property
    def junit(self) -> Path:
        return self.gate_dir / "junit.xml"


LONG = "long"
"""The tag of experiments left out of the gate unless named or selected by ``--tag long``."""


def exit_code(codes: list[int]) -> int:
    """1 if any scenario failed an SLO; else 2 if any did not pass (or none ran); else 0."""
    if 1 in codes:
        return 1
    return 2 if not codes or any(c != 0 for c in codes) else 0


def select(options: GateOptions, experiments: list[Experiment] | None = None
           ) -> tuple[list[Experiment], list[Experiment]]:
    """(the experiments to run, those of another profile that match but are skipped).

    An experiment tagged ``long`` (e.g. ``consumer_lag_critical``, ~10 min) runs only when asked for by
    name or by ``--tag long``: the gate's default stays the catalogue a release waits for.
    """
    exps = [e for e in (experiments if experiments is not None else catalogue(options.catalogue_dir))
            if (not options.tags or set(options.tags) & set(e.ext.tags))
            and (not options.names or e.name in options.names)
            and (LONG not in e.ext.tags or LONG in options.tags or e.name in options.names)]
    return [e for e in exps if e.ext.profile == options.profile], [e for e in exps if e.ext.profile != options.profile]


def settle_local(options: RunOptions) -> str | None:
    """The local stack back to health before the next experiment, when the run before left it unhealthy:
    revert this stack's open faults (as ``resilience cleanup``), start what is down, wait for every
    component (:meth:`stack.core.LocalStack.heal`). ``None`` when it was healthy or is not running (the run
    starts it); :class:`RunError` naming what did not come back."""
    from faults.cleanup import cleanup
    from stack.core import LocalStack
    from stack.errors import StackError

    stack = LocalStack(port_base=options.port_base, data_dir=options.data_dir)
    try:
        if not stack.is_running() or (status := stack.status()).healthy:
            return None
        t0 = time.monotonic()
        bad = "; ".join(f"{c.name}: {c.detail}" for c in status.components if not c.healthy)
        reverted = cleanup(port_base=options.port_base)
        healed = stack.heal(status=None if reverted else status)  # a revert changes what is healthy
    except StackError as exc:
        raise RunError(f"the stack at port base {options.port_base} was left unhealthy and did not come back: "
                       f"{exc}") from None
    undone = f"reverted {', '.join(r.fault for r in reverted)}; " if reverted else ""
    return (f"the stack was unhealthy ({bad}); {undone}{'; '.join(healed)}; healthy again after "
            f"{time.monotonic() - t0:.0f} s")


def run_gate(options: GateOptions, run_one: RunOne, chosen: list[Experiment],
             on_start: Callable[[int, int, Experiment], None] | None = None,
             settle: Settle | None = None) -> GateResult:
    """Run ``chosen`` one after the other into a new gate directory; write the index and the JUnit.

    ``settle`` runs before every experiment but the first (default: :func:`settle_local` on the local
    target, nothing elsewhere)."""
    if settle is None and options.target == "local":
        settle = settle_local
    started = time.time()
    gate_dir = options.reports_dir / f"gate-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    gate_dir.mkdir(parents=True)
    results: list[ScenarioResult] = []
    settled: list[str] = []
    skipped: list[str] = []
    interrupted: str | None = None
    for i, exp in enumerate(chosen, 1):
        if on_start:
            on_start(i, len(chosen), exp)
        run_options = RunOptions(experiment=str(exp.path), target=options.target, port_base=options.port_base,
                                 data_dir=options.data_dir, reports_dir=gate_dir, abort_if=options.abort_if,
                                 secure=options.secure, service=options.service, rate=options.rate)
        repeat = options.repeat or exp.ext.repeat
        try:
            if settle is not None and i > 1 and (note := settle(run_options)):
                logger.warning("before %s: %s", exp.name, note)
                settled.append(f"before {exp.name}: {note}")
            result = run_trials(run_options, repeat, run_one) if repeat > 1 else run_one(run_options)
        except NotApplicable as exc:
            logger.warning("%s skipped: %s", exp.name, exc)
            skipped.append(f"{exp.name}: {exc}")
            continue
        except RunError as exc:
            logger.error("%s did not start: %s", exp.name, exc)
            results.append(ScenarioResult.not_started(exp.ext.scenario, exp.title, options.target, str(exc),
                                                      gate_dir))
            continue
        except RunInterrupted as exc:  # the user's signal: this run rolled back and judged, the gate ends here
            interrupted = f"{exp.name}: {exc}"
            logger.error("gate interrupted during %s; the %d experiment(s) after it do not start", interrupted,
                         len(chosen) - i)
            results.append(ScenarioResult.from_run_dir(exc.result.run_dir))
            results += [ScenarioResult.not_started(e.ext.scenario, e.title, options.target,
                                                   f"the gate was interrupted during {interrupted}", gate_dir)
                        for e in chosen[i:]]
            break
        results.append(ScenarioResult.from_run_dir(result.run_dir))
    finish_gate(options.baseline, gate_dir, results, started, exit_code([r.exit_code for r in results]),
                target=options.target, profile=options.profile)  # baseline comparisons, history
    write_junit(results, gate_dir / "junit.xml")
    if options.junit_path:
        write_junit(results, options.junit_path)
    render_index(results, gate_dir / "index.html", settled=settled, skipped=skipped)
    return GateResult(gate_dir, results, skipped=skipped, settled=settled, interrupted=interrupted)
