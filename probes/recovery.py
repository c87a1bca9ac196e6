"""Recovery time (RTO) from sampled series.

The arithmetic is pure (:func:`recovery_time`) so it can be tested on recorded
series; the probes around it fetch the series from Prometheus at 1 s resolution.

RTO is measured from the fault's start (from the run's journal) to the first
moment from which a recovery condition held *continuously* for a stabilisation
window. A condition that never broke gives RTO 0. Samples further apart than
``max_gap_s`` are a scrape gap: a stable window cannot span one, and a run whose
post-fault data has gaps is inconclusive rather than "never recovered".

The same condition sampled before the fault is the baseline: if it did not hold
then, the service was out of its SLO before anything was broken and a "recovery"
would time the baseline, not the fault, so the result is inconclusive.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Recovery", "RecoveryStatus", "recovery_time"]


class RecoveryStatus(StrEnum):
    RECOVERED = "recovered"
    NEVER_RECOVERED = "never_recovered"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Recovery:
    status: RecoveryStatus
    rto_s: float | None
    recovered_at: float | None
    reason: str
    broke_at: float | None = None  # first sample after the fault at which the condition did not hold
    settled: bool = False  # no later sample can change it (the baseline before the fault decided it)
    # Inconclusive only because the run ended while the condition was settling: the RTO cannot be less than
    # this (seconds after the fault's start; set only when no scrape gap could hide an earlier recovery).
    at_least_s: float | None = None


#: Share of the pre-fault samples in which the condition must hold for the RTO to mean anything.
MIN_BASELINE_SHARE = 0.8


def recovery_time(samples: Sequence[tuple[float, bool]], fault_start: float, stabilization_s: float,
                  max_gap_s: float = 3.0, observed_until: float | None = None,
                  min_baseline_share: float = MIN_BASELINE_SHARE) -> Recovery:
    """RTO of a boolean condition sampled at ``samples`` = [(epoch seconds, condition holds), ...].

    Args:
        samples: time-ordered samples; only those at or after ``fault_start`` are used.
        fault_start: when the fault was injected (epoch seconds).
        stabilization_s: how long the condition must hold without a break to count as recovered.
        max_gap_s: a larger distance between consecutive samples is a scrape gap.
        observed_until: end of the observation (default: the last sample). A stable window must
            end by then; a recovery that started too late to be confirmed is inconclusive.
        min_baseline_share: samples before ``fault_start`` are the baseline; when there are at
            least 3 and the condition held in fewer than this share of them, the result is
            inconclusive (the service was not healthy before the fault).

    Returns:
        A :class:`Recovery`: ``rto_s`` is set only when RECOVERED.
    """
    if stabilization_s < 0 or max_gap_s <= 0:
        raise ValueError("stabilization_s must be >= 0 and max_gap_s > 0")
    before = [ok for t, ok in samples if t < fault_start]
    if len(before) >= 3 and sum(before) < min_baseline_share * len(before):
        return Recovery(RecoveryStatus.INCONCLUSIVE, None, None,
                        f"the condition held in only {100 * sum(before) / len(before):.0f} % of the {len(before)} "
                        f"samples before the fault (need {100 * min_baseline_share:.0f} %): the service was out of "
                        "its SLO before anything was broken, so an RTO would time the baseline, not the recovery",
                        settled=True)
    pts = sorted((t, ok) for t, ok in samples if t >= fault_start)
    if not pts:
        return Recovery(RecoveryStatus.INCONCLUSIVE, None, None, "no samples after the fault started")
    end = observed_until if observed_until is not None else pts[-1][0]
    times = [fault_start] + [t for t, _ in pts] + [end]
    gaps = sum(1 for a, b in itertools.pairwise(times) if b - a > max_gap_s)
    broke_at = next((t for t, ok in pts if not ok), None)

    if broke_at is None:
        if gaps:
            return Recovery(RecoveryStatus.INCONCLUSIVE, None, None,
                            f"condition never seen broken, but {gaps} scrape gap(s) longer than {max_gap_s:.0f} s "
                            "could hide a break")
        if end - fault_start < stabilization_s:
            return Recovery(RecoveryStatus.INCONCLUSIVE, None, None,
                            f"observed only {end - fault_start:.1f} s after the fault, less than the "
                            f"{stabilization_s:.0f} s stabilisation window")
        return Recovery(RecoveryStatus.RECOVERED, 0.0, fault_start, "condition never broke: the fault did not bite")

    # Recovery is the start of the first unbroken, gap-free run of True samples after the break
    # that lasts the stabilisation window.
    candidate: float | None = None
    prev_t = broke_at
    for t, ok in pts:
        if t <= broke_at:
            continue
        if t - prev_t > max_gap_s:
            candidate = None  # a stable window cannot span a gap
        if not ok:
            candidate = None
        elif candidate is None:
            candidate = t
        if candidate is not None and t - candidate >= stabilization_s:
            return Recovery(RecoveryStatus.RECOVERED, candidate - fault_start, candidate,
                            f"condition held from +{candidate - fault_start:.1f} s for {stabilization_s:.0f} s",
                            broke_at)
        prev_t = t
    if candidate is not None and end - prev_t <= max_gap_s:
        return Recovery(RecoveryStatus.INCONCLUSIVE, None, None,
                        f"condition holding since +{candidate - fault_start:.1f} s but observed only "
                        f"{end - candidate:.1f} s of the {stabilization_s:.0f} s stabilisation window", broke_at,
                        at_least_s=None if gaps else candidate - fault_start)
    if gaps:
        return Recovery(RecoveryStatus.INCONCLUSIVE, None, None,
                        f"not recovered, and {gaps} scrape gap(s) longer than {max_gap_s:.0f} s hide part of the run",
                        broke_at)
    return Recovery(RecoveryStatus.NEVER_RECOVERED, None, None,
                    f"condition never held for {stabilization_s:.0f} s in the {end - fault_start:.0f} s after the "
                    "fault",
                    broke_at)
