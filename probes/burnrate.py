"""Burn-rate rules from the SLO catalogue, and the user's ``--abort-if`` conditions, as PromQL.

A *budget* SLO is a PromQL SLO whose objective leaves an error budget: a percentage that must
stay ``>=`` some value (availability ≥ 99.9 % leaves 0.1 %) or a ratio that must stay ``<=`` one
(error ratio ≤ 0.001). Its *burn rate* over a window is how many times faster than allowed the
budget is being spent there: ``(100 − availability over the window) / 0.1`` — 1 means exactly on
budget, 14.4 means a 30-day budget gone in two days.

A :class:`BurnRule` is the multi-window rule of the SRE workbook: it *breaches* when the burn rate
is at least ``factor`` over a long window **and** over a short one (the long window makes it
significant, the short one makes it stop firing once the burning has stopped). The workbook's
windows are hours long; a chaos run lasts minutes, so :data:`DEFAULT_WINDOWS` scales them down
(``docs/report.md``, "Safeguards"): 14.4× over 5 min and 1 min. With the 0.1 % availability budget
that is at least 4.3 s without a ready replica in the last 5 minutes, 0.9 s of them in the last
minute: a rebalance's one-second blip does not abort a run, an outage does within seconds.

Every query is built from the SLO's own PromQL (:meth:`probes.slo.Catalogue.promql`) under the
run's metric view: no metric name appears here.
"""

from __future__ import annotations

import logging
import math
import string
from dataclasses import asdict, dataclass
from typing import Any

from probes import prom
from probes.slo import Catalogue, Comparison, MetricView, PromQuery

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_WINDOWS", "AbortIf", "Breach", "BurnRule", "burn_rules", "expand_abort_if", "firing"]

#: (factor, long window s, short window s): the workbook's fast-burn page (14.4× over 1 h and 5 min), scaled
#: to runs of a few minutes. Its slow-burn pair (6× over 6 h and 30 min) has no meaning within one run.
DEFAULT_WINDOWS: tuple[tuple[float, int, int], ...] = ((14.4, 300, 60),)


@dataclass(frozen=True)
class Breach:
    """A rule that held: what it was, the values seen and when."""

    kind: str  # "burn_rate" or "abort_if"
    rule: str
    value: float
    at: float
    details: dict[str, Any]


@dataclass(frozen=True)
class BurnRule:
    """Burn rate of ``slo``'s budget at least ``factor`` over ``long_s`` and over ``short_s``."""

    slo: str
    factor: float
    long_s: int
    short_s: int
    budget: float
    long_query: str
    short_query: str
    template: str = ""
    """The burn-rate PromQL with ``__WINDOW__`` for its range (see :meth:`query`)."""

    def query(self, window_s: int, since: float | None = None, now: float | None = None) -> str:
        """The burn rate over ``window_s``, counting only what happened after ``since``.

        Time in the window before ``since`` (the experiment's start) counts as within budget: the burn
        over the part since then is scaled by its share of the window. So an outage left by the run
        before this one never counts, and a one-second blip early in a run is not read as a huge burn.
        """
        n = window_s if since is None or now is None else max(1, min(window_s, int(now - since)))
        full = self.long_query if window_s == self.long_s else self.short_query
        if n == window_s:
            return full
        return f"({self.template.replace('__WINDOW__', f'{n}s')}) * {n} / {window_s}"

    def describe(self) -> str:
        return (f"{self.slo} budget ({self.budget:g}) burning ≥ {self.factor:g}× over {self.long_s} s "
                f"and {self.short_s} s")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self, url: str, now: float, since: float | None = None, timeout_s: float = 2.0) -> Breach | None:
        """Evaluate the rule now (counting from ``since``, see :meth:`query`); a :class:`Breach` when both
        windows burn at least ``factor``.

        Raises:
            ProbeError: Prometheus did not answer (the caller decides what a blind check means).
        """
        long_q = self.query(self.long_s, since, now)
        long_rate = prom.instant(url, long_q, timeout_s=timeout_s)
        if long_rate < self.factor:
            return None
        short_q = self.query(self.short_s, since, now)
        short_rate = prom.instant(url, short_q, timeout_s=timeout_s)
        if short_rate < self.factor:
            return None
        return Breach("burn_rate", self.describe(), round(min(long_rate, short_rate), 2), now,
                      {"slo": self.slo, "factor": self.factor, "long_s": self.long_s, "short_s": self.short_s,
                       "long_burn_rate": round(long_rate, 3), "short_burn_rate": round(short_rate, 3),
                       "long_query": long_q, "short_query": short_q, "since": since})


def _burn_query(cat: Catalogue, slo_id: str, view: MetricView, window_s: int | str
                ) -> tuple[str, float] | None:
    """The burn-rate PromQL of ``slo_id`` over ``window_s`` seconds (or a placeholder) and its budget, or
    ``None`` if it has no budget."""
    slo = cat.slo(slo_id)
    if not isinstance(slo.measure, PromQuery):
        return None
    o = slo.objective
    query = cat.promql(slo_id, view, window=f"{window_s}s" if isinstance(window_s, int) else window_s)
    if o.unit == "percent" and o.comparison in (Comparison.GE, Comparison.GT) and o.value < 100:
        budget = 100.0 - o.value
        return f"(100 - ({query})) / {budget:g}", budget
    if o.unit == "ratio" and o.comparison in (Comparison.LE, Comparison.LT) and 0 < o.value < 1:
        return f"({query}) / {o.value:g}", o.value
    return None


def burn_rules(cat: Catalogue, view: MetricView, slo_ids: list[str],
               windows: tuple[tuple[float, int, int], ...] = DEFAULT_WINDOWS) -> list[BurnRule]:
    """One rule per window pair for every budget SLO among ``slo_ids`` (others have no budget to burn).

    Raises:
        KeyError: an unknown SLO id; MeasureUndefined: the view does not define a measure the SLO uses.
    """
    rules = []
    for slo_id in slo_ids:
        if not cat.applicable(slo_id, view):
            continue  # an optional measure this service lacks (the read API's): no budget to burn here
        for factor, long_s, short_s in windows:
            if short_s >= long_s or factor <= 0:
                raise ValueError(f"burn-rate window ({factor}, {long_s}, {short_s}): need factor > 0 and "
                                 "short < long")
            long_q = _burn_query(cat, slo_id, view, long_s)
            short_q = _burn_query(cat, slo_id, view, short_s)
            template = _burn_query(cat, slo_id, view, "__WINDOW__")
            if long_q is None or short_q is None or template is None:
                break
            rules.append(BurnRule(slo_id, factor, long_s, short_s, long_q[1], long_q[0], short_q[0], template[0]))
    return rules


@dataclass(frozen=True)
class AbortIf:
    """A user's abort condition: PromQL that *fires* when it returns any sample with a non-zero value."""

    given: str
    query: str

    def check(self, url: str, now: float, since: float | None = None, timeout_s: float = 2.0) -> Breach | None:
        """A :class:`Breach` when the condition fires now (``since`` is not used: the user wrote the windows)."""
        value = firing(url, self.query, timeout_s)
        if value is None:
            return None
        return Breach("abort_if", self.given, value, now, {"query": self.query})


def expand_abort_if(cat: Catalogue, view: MetricView, expr: str) -> AbortIf:
    """``expr`` with each ``{measure}`` replaced by that measure's PromQL under ``view`` (30 s windows).

    ``{consumer_lag} > 40000`` becomes the lag query of the target's metric profile followed by ``> 40000``.
    Literal braces of PromQL label matchers are written doubled (``{{job="x"}}``), as in docs/slo.yaml.

    Raises:
        ValueError: a placeholder that is not a measure, or a malformed template (the message lists the measures).
    """
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(expr) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{expr!r}: {exc} (write literal braces doubled: {{{{...}}}})") from None
    unknown = sorted(n for n in names if n not in cat.measures)
    if unknown or "" in names:
        raise ValueError(f"{expr!r}: {', '.join(unknown) or '{}'} not a measure; measures: {', '.join(cat.measures)}")
    query = expr.format(**{n: f"({cat.query(n, view, window='30s')})" for n in names})
    return AbortIf(expr, query)


def firing(url: str, query: str, timeout_s: float = 2.0) -> float | None:
    """The first non-zero sample of ``query`` now, or ``None`` when it returns nothing (or only zeros).

    Raises:
        ProbeError: Prometheus unreachable, or it rejects the query (the message quotes its error).
    """
    from prometheus_api_client import PrometheusApiClientException
    from requests.exceptions import RequestException

    try:
        result = prom.client(url, timeout_s, retries=0).custom_query(query)
    except (RequestException, PrometheusApiClientException) as exc:
        raise prom.ProbeError(f"Prometheus at {url}: query failed: {exc} (query: {query})") from None
    for sample in result or []:
        try:
            value = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if value != 0 and not math.isnan(value):
            return value
    return None
