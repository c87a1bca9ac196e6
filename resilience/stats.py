"""Statistics over repeated runs: confidence intervals for verdicts, and regression tests between releases.

Both rules are documented for users in ``docs/report.md`` ("Repeated trials", "Regression verdicts").

**Interval verdict** (:func:`interval_verdict`): the trials' values of one SLO get a 95 % bootstrap
confidence interval of their mean (``scipy.stats.bootstrap``, BCa, 9,999 resamples, fixed seed), then
widened on both sides by the measurement's resolution (an RTO read at 0.5 s steps may be 0.5 s off
either way). The verdict is **pass** only if the whole widened interval meets the objective, **fail**
only if the whole interval misses it, and **inconclusive** when it straddles it. An objective of
equality (``== 0`` lost events) is not an average: it passes only if every trial met it exactly. A
trial that never recovered (an infinite RTO) fails the SLO; a trial that measured nothing makes it
inconclusive (missing data never passes).

**Regression test** (:func:`compare`): the two-sided Mann–Whitney U test (``scipy.stats.mannwhitneyu``,
exact for small samples) between the baseline's values and the candidate's, at α = 0.05. The
effect size is Cliff's delta (the rank-biserial correlation, −1..1: the share of candidate/baseline
pairs where the candidate is larger, minus the share where it is smaller) with the difference of the
medians in the SLO's unit. The verdict is **regressed** (or **improved**) only if the test is
significant *and* the medians moved by more than the measurement's resolution in the direction the
objective calls worse (or better); otherwise **no change** — unless the samples are so small that
no outcome could reach α (fewer than 4 against 4, for instance), which is **insufficient data**.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ALPHA", "CONFIDENCE", "Comparison", "IntervalVerdict", "compare", "confidence_interval",
           "interval_verdict", "min_p_value", "worse_direction"]

CONFIDENCE = 0.95
ALPHA = 0.05
N_RESAMPLES = 9999
SEED = 20260117


def worse_direction(comparison: str) -> int:
    """+1 when a larger value is worse (``<``, ``<=`` objectives), −1 when smaller is (``>``, ``>=``), 0 for ``==``."""
    return {"<": 1, "<=": 1, ">": -1, ">=": -1}.get(comparison, 0)


def confidence_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The bootstrap confidence interval of the mean of ``values`` (finite numbers, at least two).

    BCa first; where BCa is undefined (all values equal, or nearly) the percentile interval; for
    identical values the interval is that value.
    """
    data = [float(v) for v in values]
    if len(data) < 2:
        raise ValueError("a confidence interval needs at least two values")
    if max(data) == min(data):
        return data[0], data[0]
    import numpy as np
    from scipy.stats import bootstrap

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bootstrap((np.asarray(data),), np.mean, confidence_level=confidence, n_resamples=N_RESAMPLES,
                            method=method, rng=np.random.default_rng(SEED))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    return min(data), max(data)


@dataclass(frozen=True)
class IntervalVerdict:
    """The verdict of one SLO over repeated trials."""

    outcome: str
    mean: float | None
    low: float | None
    high: float | None
    resolution: float
    n: int
    values: list[float | None]
    reason: str = ""

    def as_details(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("outcome", "reason")}


def _holds(comparison: str, value: float, objective: float) -> bool:
    return {"<": value < objective, "<=": value <= objective, ">": value > objective, ">=": value >= objective,
            "==": value == objective}[comparison]


def interval_verdict(values: Sequence[float | None], comparison: str, objective: float, resolution: float,
                     confidence: float = CONFIDENCE) -> IntervalVerdict:
    """The pass / fail / inconclusive verdict of one SLO from its trials' values (module doc).

    Args:
        values: one per trial; ``None`` where the trial measured nothing, ``inf`` where it never recovered.
        comparison, objective: the objective (``"<="``, 60.0).
        resolution: how far off one measurement may be (seconds for an RTO, points of percent...).
    """
    vals = list(values)
    n = len(vals)
    measured = [v for v in vals if v is not None and not math.isnan(v)]
    if comparison == "==":
        bad = [v for v in measured if v != objective]
        mean = statistics.fmean(measured) if measured and all(math.isfinite(v) for v in measured) else None
        if bad:
            return IntervalVerdict("fail", mean, None, None, resolution, n, vals,
                                   f"{len(bad)} of {n} trials measured other than {objective:g}")
        if len(measured) < n:
            return IntervalVerdict("inconclusive", mean, None, None, resolution, n, vals,
                                   f"{n - len(measured)} of {n} trials measured nothing")
        return IntervalVerdict("pass", mean, objective, objective, resolution, n, vals)
    if any(math.isinf(v) and not _holds(comparison, v, objective) for v in measured):
        k = sum(1 for v in measured if math.isinf(v))
        return IntervalVerdict("fail", None, None, None, resolution, n, vals,
                               f"{k} of {n} trials never recovered")
    if len(measured) < n:
        return IntervalVerdict("inconclusive", None, None, None, resolution, n, vals,
                               f"{n - len(measured)} of {n} trials measured nothing: missing data never passes")
    if n < 2:
        return IntervalVerdict("inconclusive", measured[0] if measured else None, None, None, resolution, n, vals,
                               "one trial gives no interval: repeat at least twice")
    lo, hi = confidence_interval(measured, confidence)
    lo_w, hi_w = lo - resolution, hi + resolution
    mean = statistics.fmean(measured)
    text = (f"{confidence:.0%} CI of the mean [{lo:.4g}, {hi:.4g}] ± resolution {resolution:g} = "
            f"[{lo_w:.4g}, {hi_w:.4g}] over {n} trials")
    if _holds(comparison, lo_w, objective) and _holds(comparison, hi_w, objective):
        return IntervalVerdict("pass", mean, lo_w, hi_w, resolution, n, vals, text)
    if not _holds(comparison, lo_w, objective) and not _holds(comparison, hi_w, objective):
        return IntervalVerdict("fail", mean, lo_w, hi_w, resolution, n, vals,
                               f"{text}: wholly outside {comparison} {objective:g}")
    return IntervalVerdict("inconclusive", mean, lo_w, hi_w, resolution, n, vals,
                           f"{text} straddles the objective {comparison} {objective:g}: more trials may decide")


def min_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided p-value an exact Mann–Whitney test can give with these sample sizes."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


@dataclass(frozen=True)
class Comparison:
    """One SLO, candidate against baseline."""

    verdict: str  # regressed, improved, no change, insufficient data
    p_value: float | None
    effect_size: float | None  # Cliff's delta, candidate vs baseline (+: candidate larger)
    median_baseline: float | None
    median_candidate: float | None
    n_baseline: int
    n_candidate: int
    reason: str

    @property
    def median_delta(self) -> float | None:
        if self.median_baseline is None or self.median_candidate is None:
            return None
        return self.median_candidate - self.median_baseline

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "median_delta": self.median_delta}


def compare(baseline: Sequence[float | None], candidate: Sequence[float | None], comparison: str,
            objective: float, resolution: float, alpha: float = ALPHA) -> Comparison:
    """Regressed, improved, no change or insufficient data (module doc).

    ``None`` and NaN values are left out; ``inf`` (never recovered) ranks above every finite value.
    For an ``==`` objective the distance from the objective is compared (farther is worse).
    """
    def clean(xs: Sequence[float | None]) -> list[float]:
        out = [float(x) for x in xs if x is not None and not math.isnan(x)]
        return [abs(x - objective) for x in out] if comparison == "==" else out

    b, c = clean(baseline), clean(candidate)
    nb, nc = len(b), len(c)
    worse = worse_direction(comparison) or 1
    if nb == 0 or nc == 0:
        return Comparison("insufficient data", None, None, _median(b), _median(c), nb, nc,
                          f"{nb} baseline and {nc} candidate values: nothing to compare")
    floor = min_p_value(nb, nc)
    from scipy.stats import mannwhitneyu

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mannwhitneyu(c, b, alternative="two-sided", method="auto")
    u, p = float(res.statistic), float(res.pvalue)
    if math.isnan(p):  # every value identical in both samples
        p = 1.0
    delta = 2.0 * u / (nb * nc) - 1.0  # Cliff's delta of candidate vs baseline
    mb, mc = _median(b), _median(c)
    shift = (mc - mb) if mb is not None and mc is not None and math.isfinite(mc - mb) else (
        math.inf if mc == math.inf else -math.inf if mb == math.inf else 0.0)
    sizes = f"n = {nb} baseline, {nc} candidate"
    if floor >= alpha:
        return Comparison("insufficient data", p, delta, mb, mc, nb, nc,
                          f"{sizes}: the smallest p-value these sizes allow is {floor:.3f} ≥ α = {alpha:g}; "
                          "run more trials")
    moved = abs(shift) > resolution
    what = f"Mann–Whitney p = {p:.4f}, Cliff's δ = {delta:+.2f}, median {_fmt(mb)} → {_fmt(mc)} ({sizes})"
    if p < alpha and moved:
        verdict = "regressed" if shift * worse > 0 else "improved"
        return Comparison(verdict, p, delta, mb, mc, nb, nc, what)
    why = (f"not significant at α = {alpha:g}" if p >= alpha
           else f"the medians moved {abs(shift):.3g}, within the resolution {resolution:g}")
    return Comparison("no change", p, delta, mb, mc, nb, nc, f"{what}: {why}")


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"
