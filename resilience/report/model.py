"""Read a run directory for reporting: whatever is missing or broken is noted, never fatal.

The run directory format is ``docs/run-directory.md``. A report is most needed when
a run went wrong, so every reader here tolerates a missing file, a truncated file and
a field of the wrong type: it records a sentence saying what is missing and carries on.
A run without ``summary.json`` crashed before it was judged; it is reported as
inconclusive (never as a pass).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.verdict import Outcome

logger = logging.getLogger(__name__)

__all__ = ["EXIT_CODES", "RunFiles", "ScenarioResult", "effective_outcome", "load_run_dir", "num"]

#: The runner's exit code per outcome (``resilience/judge.py``); used when summary.json has none.
EXIT_CODES = {Outcome.PASS: 0, Outcome.FAIL: 1, Outcome.INCONCLUSIVE: 2}

_RANK = {Outcome.FAIL: 0, Outcome.INCONCLUSIVE: 1, Outcome.PASS: 2}


def num(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (missing, null, NaN, not a number, or a bool)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty list."""
    return value if isinstance(value, list) else []


def parse_outcome(value: Any) -> Outcome | None:
    """The :class:`Outcome` named by ``value`` (``"pass"``, ``"fail"``, ``"inconclusive"``), else ``None``."""
    try:
        return Outcome(str(value).lower())
    except ValueError:
        return None


@dataclass
class RunFiles:
    """The JSON documents of one run directory, each ``None`` when missing or unreadable.

    ``problems`` holds one sentence per missing or broken file or field, for the report.
    """

    run_dir: Path
    run: dict[str, Any] | None
    summary: dict[str, Any] | None
    series: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)

    @property
    def crashed(self) -> bool:
        """True when there is no readable summary.json: the run ended before it was judged."""
        return self.summary is None

    @property
    def run_doc(self) -> dict[str, Any]:
        """run.json, or an empty dict."""
        return self.run or {}

    @property
    def summary_doc(self) -> dict[str, Any]:
        """summary.json, or an empty dict."""
        return self.summary or {}

    @property
    def scenario(self) -> str:
        """The scenario id from summary.json or run.json, else the directory name."""
        for doc in (self.summary_doc, self.run_doc):
            if isinstance(doc.get("scenario"), str) and doc["scenario"]:
                return str(doc["scenario"])
        return self.run_dir.name

    @property
    def target(self) -> str:
        """The target (``local``, ``kubernetes``) from run.json, else ``unknown``."""
        value = self.run_doc.get("target")
        return str(value) if isinstance(value, str) and value else "unknown"

    @property
    def started_at(self) -> float | None:
        """Run start, epoch seconds, from run.json."""
        return num(self.run_doc.get("started_at"))

    @property
    def ended_at(self) -> float | None:
        """Run end, epoch seconds, from run.json."""
        return num(self.run_doc.get("ended_at"))

    @property
    def duration_s(self) -> float | None:
        """Run duration in seconds, when run.json has both times."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    @property
    def verdicts(self) -> list[dict[str, Any]]:
        """The verdict objects of summary.json (entries that are not objects are dropped)."""
        return [v for v in as_list(self.summary_doc.get("verdicts")) if isinstance(v, dict)]

    @property
    def outcome(self) -> Outcome:
        """The outcome to report: see :func:`effective_outcome`."""
        return effective_outcome(self)


def effective_outcome(files: RunFiles) -> Outcome:
    """The outcome a report shows: summary.json's, never better than its verdicts.

    A crashed run (no summary.json), an unknown outcome, or a summary with no verdicts
    is inconclusive; a summary saying ``pass`` while a verdict failed is a fail. The
    point is that nothing short of every SLO passing is ever shown as a pass.
    """
    if files.summary is None:
        return Outcome.INCONCLUSIVE
    stated = parse_outcome(files.summary.get("outcome")) or Outcome.INCONCLUSIVE
    outcomes = [parse_outcome(v.get("outcome")) or Outcome.INCONCLUSIVE for v in files.verdicts]
    worst_verdict = min(outcomes, key=_RANK.__getitem__) if outcomes else Outcome.INCONCLUSIVE
    return min(stated, worst_verdict, key=_RANK.__getitem__)


def _read_json(path: Path, problems: list[str], missing_means: str) -> dict[str, Any] | None:
    if not path.exists():
        problems.append(f"{path.name} is missing: {missing_means}")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name} is unreadable ({exc}): {missing_means}")
        logger.warning("run directory %s: %s unreadable: %s", path.parent, path.name, exc)
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name} is not a JSON object: {missing_means}")
        return None
    return data


def load_run_dir(run_dir: Path) -> RunFiles:
    """Read run.json, summary.json and series.json of ``run_dir``.

    Args:
        run_dir: a run directory (``docs/run-directory.md``).

    Returns:
        The documents found, with a sentence in ``problems`` for each one missing or broken.

    Raises:
        NotADirectoryError: ``run_dir`` is not a directory.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NotADirectoryError(f"not a run directory: {run_dir}")
    problems: list[str] = []
    run = _read_json(run_dir / "run.json", problems, "scenario, target, load and times are unknown")
    summary = _read_json(run_dir / "summary.json", problems,
                         "the run crashed or was killed before it was judged, so there are no verdicts")
    series = _read_json(run_dir / "series.json", problems, "no time series, so no plots")
    if summary is not None and not isinstance(summary.get("verdicts"), list):
        problems.append("summary.json has no verdict list")
    return RunFiles(run_dir=run_dir, run=run, summary=summary, series=series, problems=problems)


@dataclass
class ScenarioResult:
    """One scenario of a gate, as the JUnit file and the gate index show it.

    ``failing`` lists the SLOs that failed, ``inconclusive`` those that could not be
    judged (and, for a run that crashed, the crash itself), each as ``(slo, reason)``.
    """

    scenario: str
    outcome: Outcome
    exit_code: int
    duration_s: float | None
    run_dir: Path
    failing: list[tuple[str, str]] = field(default_factory=list)
    inconclusive: list[tuple[str, str]] = field(default_factory=list)
    target: str = "unknown"
    title: str = ""
    crashed: bool = False
    rto_replicas_ready_s: float | None = None
    rto_data_flow_s: float | None = None
    rpo_s: float | None = None
    lost: int | None = None
    score: float | None = None
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    """SLOs compared with a baseline (``resilience gate --baseline``; :mod:`resilience.baseline`)."""

    @property
    def regressed(self) -> list[dict[str, Any]]:
        """The comparisons whose verdict is ``regressed``."""
        return [c for c in self.comparisons if c.get("verdict") == "regressed"]

    @property
    def baseline_unanswered(self) -> bool:
        """A baseline was asked for and no SLO of this scenario could be compared with it."""
        return bool(self.comparisons) and all(c.get("verdict") == "insufficient data" for c in self.comparisons)

    @property
    def gate_exit_code(self) -> int:
        """The exit code the gate counts: 1 for a regression, 2 for a pass that no baseline could confirm."""
        if self.regressed:
            return 1
        return 2 if self.exit_code == 0 and self.baseline_unanswered else self.exit_code

    @property
    def report_path(self) -> Path:
        """Where the run's ``report.html`` is (it may not have been rendered)."""
        return self.run_dir / "report.html"

    @classmethod
    def not_started(cls, scenario: str, title: str, target: str, error: str, where: Path) -> ScenarioResult:
        """A scenario whose run never started (bad input, unreachable target): inconclusive, exit code 2."""
        return cls(scenario=scenario, outcome=Outcome.INCONCLUSIVE, exit_code=2, duration_s=None, run_dir=where,
                   inconclusive=[("run", f"did not start, nothing was injected: {error}")], target=target,
                   title=title, crashed=True)

    @classmethod
    def from_run_dir(cls, run_dir: Path) -> ScenarioResult:
        """Build the result of one run from its summary.json and run.json.

        A run without a readable summary.json is a crash: outcome inconclusive, exit
        code 2, and the crash listed in ``inconclusive``.

        Raises:
            NotADirectoryError: ``run_dir`` is not a directory.
        """
        files = load_run_dir(run_dir)
        summary = files.summary_doc
        outcome = files.outcome
        failing: list[tuple[str, str]] = []
        inconclusive: list[tuple[str, str]] = []
        for v in files.verdicts:
            slo = str(v.get("slo") or "?")
            reason = str(v.get("reason") or "")
            verdict_outcome = parse_outcome(v.get("outcome"))
            if verdict_outcome is Outcome.FAIL:
                failing.append((slo, reason or _measured_text(v)))
            elif verdict_outcome is not Outcome.PASS:
                inconclusive.append((slo, reason or "not judged"))
        if files.crashed:
            error = files.run_doc.get("error")
            why = f"crashed before it was judged: {error}" if error else \
                "crashed before it was judged: no summary.json (see runner.log)"
            inconclusive.insert(0, ("run", why))
        elif outcome is not Outcome.PASS and not failing and not inconclusive:
            errors = [str(e) for e in as_list(summary.get("errors"))]
            inconclusive.append(("run", "; ".join(errors) or f"summary.json outcome {summary.get('outcome')!r}"))
        exit_code = summary.get("exit_code")
        if not isinstance(exit_code, int) or isinstance(exit_code, bool):
            exit_code = EXIT_CODES[outcome]
        rto = as_dict(summary.get("rto"))
        loss = as_dict(summary.get("data_loss"))
        lost = num(loss.get("lost"))
        title = files.run_doc.get("title")
        return cls(
            scenario=files.scenario, outcome=outcome, exit_code=exit_code, duration_s=files.duration_s,
            run_dir=files.run_dir, failing=failing, inconclusive=inconclusive, target=files.target,
            title=title if isinstance(title, str) else "", crashed=files.crashed,
            rto_replicas_ready_s=num(as_dict(rto.get("replicas_ready")).get("rto_s")),
            rto_data_flow_s=num(as_dict(rto.get("data_flow")).get("rto_s")),
            rpo_s=num(loss.get("rpo_s")), lost=int(lost) if lost is not None else None,
            score=num(summary.get("score")),
        )


def _measured_text(verdict: dict[str, Any]) -> str:
    measured = num(verdict.get("measured"))
    shown = "nothing" if measured is None else f"{measured:g}"
    return f"measured {shown} {verdict.get('unit') or ''}, objective {verdict.get('objective') or '?'}".replace(
        "  ", " ")
