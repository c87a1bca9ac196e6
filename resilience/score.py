"""The resilience score: one number from 0 to 100 per run and per gate (``docs/report.md``).

Every verdict of a run earns points, and the run's score is their mean times 100:

- **fail** or **inconclusive**: 0 (nothing proven earns nothing; an abort by a safeguard is a
  failed verdict);
- **pass**: ``0.5 + 0.5 × margin``, where ``margin`` in [0, 1] is how much of the objective the
  measurement kept in reserve:

  - ``< o`` / ``<= o`` with ``o > 0``: ``1 − measured / o`` (an RTO of 6 s against 60 s keeps 0.9);
  - ``> o`` / ``>= o`` in percent: ``(measured − o) / (100 − o)`` (availability 100 % against
    99.9 % keeps 1; 99.95 % keeps 0.5); in ratio: the same towards 1;
  - anything else (``== 0``, ``<= 0``, ``>= 2 replicas``, a probe's expected output, the load
    achieved): 1, since passing is all there is to it.

So a run that passes every SLO scores between 50 and 100, one that passes nothing scores 0, and
the margin tells a comfortable pass from a narrow one. A gate's score is the mean of its
scenarios' scores (a scenario with repeated trials counts the mean of its trials once; one that
did not start counts 0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["gate_score", "margin", "parse_objective", "run_score", "verdict_points"]

_OBJECTIVE = re.compile(r"^\s*(<=|>=|==|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_objective(text: Any) -> tuple[str, float] | None:
    """``("<=", 60.0)`` from an objective such as ``"<= 60"``; ``None`` when it is not that simple form."""
    if not isinstance(text, str):
        return None
    m = _OBJECTIVE.match(text)
    return (m.group(1), float(m.group(2))) if m else None


def margin(comparison: str, objective: float, measured: float, unit: str = "") -> float:
    """How much of the objective a passing measurement kept in reserve, in [0, 1] (see the module doc)."""
    if not math.isfinite(measured):
        return 0.0
    if comparison in ("<", "<=") and objective > 0:
        return _clamp(1.0 - measured / objective)
    if comparison in (">", ">="):
        ideal = {"percent": 100.0, "ratio": 1.0}.get(unit)
        if ideal is not None and ideal > objective:
            return _clamp((measured - objective) / (ideal - objective))
    return 1.0


def verdict_points(verdict: Mapping[str, Any]) -> float:
    """Points of one verdict of summary.json: 0 unless it passed; ``0.5 + 0.5 × margin`` when it did."""
    if verdict.get("outcome") != "pass":
        return 0.0
    parsed = parse_objective(verdict.get("objective"))
    measured = verdict.get("measured")
    if parsed is None or not isinstance(measured, int | float) or isinstance(measured, bool):
        return 1.0
    return 0.5 + 0.5 * margin(parsed[0], parsed[1], float(measured), str(verdict.get("unit") or ""))


def run_score(verdicts: Iterable[Mapping[str, Any]]) -> float | None:
    """The score of a run from its verdicts (0–100, one decimal); ``None`` when it has none (a crash)."""
    points = [verdict_points(v) for v in verdicts]
    if not points:
        return None
    return round(100.0 * sum(points) / len(points), 1)


def gate_score(scenario_scores: Iterable[float | None]) -> float | None:
    """The score of a gate: the mean of its scenarios' scores, a scenario without one counting 0."""
    scores = [0.0 if s is None else float(s) for s in scenario_scores]
    if not scores:
        return None
    return round(sum(scores) / len(scores), 1)


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, x))
