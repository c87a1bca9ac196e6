"""Verdicts: pass, fail, or inconclusive — and inconclusive is never reported as pass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Outcome", "Verdict", "overall"]


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """The judgement of one SLO: the measured value, the objective, and why."""

    slo: str
    outcome: Outcome
    measured: float | None
    objective: str
    unit: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcome"] = self.outcome.value
        return d


def overall(verdicts: list[Verdict]) -> Outcome:
    """FAIL if any SLO failed; else INCONCLUSIVE if any was inconclusive (or there were none); else PASS."""
    if any(v.outcome is Outcome.FAIL for v in verdicts):
        return Outcome.FAIL
    if not verdicts or any(v.outcome is Outcome.INCONCLUSIVE for v in verdicts):
        return Outcome.INCONCLUSIVE
    return Outcome.PASS
