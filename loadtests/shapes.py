"""Load shapes as data: a table of stages, each a linear segment of the event rate.

A shape is a list of :class:`Stage` rows. Stage lengths are fractions of the
run's duration and rates are multiples of the base ``rate`` (events/s), so one
table serves a 10-second test and an 8-hour soak alike. The Locust side
(``RateShape`` in the locustfile) turns the target rate at time ``t`` into a
user count and a per-user rate: ``users = ceil(rate / user_rate)`` and each
user paces itself at ``rate / users`` so that the total is ``rate``.

Shapes (the ``--load-shape`` choices):

``steady``
    the base rate for the whole duration.
``ramp``
    linear from 5 % to 100 % of the base rate over the first 75 %, then held.
``spike``
    the consumer-lag scenario: 30 % at the base rate, a surge at ``spike_factor``
    times the rate for 20 %, then 50 % back at the base rate while the lag drains.
``soak``
    the base rate held for a long run (default duration one hour); the table is
    the steady one, the difference is the default duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_DURATIONS", "SHAPES", "LoadPlan", "Stage", "check_shape_name"]


@dataclass(frozen=True)
class Stage:
    """One segment: lasts ``fraction`` of the run, rate goes linearly from ``start`` to ``end``
    (multiples of the base rate; the token ``"spike"`` stands for ``spike_factor``)."""

    fraction: float
    start: float | str
    end: float | str


SHAPES: dict[str, tuple[Stage, ...]] = {
    "steady": (Stage(1.0, 1.0, 1.0),),
    "ramp": (Stage(0.75, 0.05, 1.0), Stage(0.25, 1.0, 1.0)),
    "spike": (Stage(0.3, 1.0, 1.0), Stage(0.2, "spike", "spike"), Stage(0.5, 1.0, 1.0)),
    "soak": (Stage(1.0, 1.0, 1.0),),
}
DEFAULT_DURATIONS: dict[str, float] = {"steady": 60.0, "ramp": 120.0, "spike": 180.0, "soak": 3600.0}


def check_shape_name(name: str) -> str:
    """Return ``name`` if it is a known shape, else raise ``ValueError`` naming the choices."""
    if name not in SHAPES:
        raise ValueError(f"shape: unknown load shape {name!r}; choose one of {', '.join(SHAPES)}")
    return name


@dataclass(frozen=True)
class LoadPlan:
    """A shape applied to a base rate and a duration: the target rate at every second of the run.

    Arguments:
        shape: a key of :data:`SHAPES`.
        rate: base rate in events per second (> 0).
        duration: length of the run in seconds (> 0).
        user_rate: the most events per second one Locust user produces (> 0).
        spike_factor: the multiple of ``rate`` during a spike (>= 1).

    Raises ``ValueError`` naming the argument for an unknown shape or a non-positive value.
    """

    shape: str
    rate: float
    duration: float
    user_rate: float = 100.0
    spike_factor: float = 5.0

    def __post_init__(self) -> None:
        check_shape_name(self.shape)
        for name in ("rate", "duration", "user_rate"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        if not self.spike_factor >= 1:
            raise ValueError(f"spike_factor: must be >= 1, got {self.spike_factor!r}")

    @property
    def stages(self) -> tuple[Stage, ...]:
        return SHAPES[self.shape]

    def _multiple(self, value: float | str) -> float:
        return self.spike_factor if value == "spike" else float(value)

    def rate_at(self, t: float) -> float | None:
        """Target events/s at ``t`` seconds into the run, ``None`` once the run is over."""
        if t < 0 or t >= self.duration:
            return None
        begin = 0.0
        for stage in self.stages:
            length = stage.fraction * self.duration
            if t < begin + length or stage is self.stages[-1]:
                pos = min(1.0, (t - begin) / length) if length > 0 else 1.0
                a, b = self._multiple(stage.start), self._multiple(stage.end)
                return self.rate * (a + (b - a) * pos)
            begin += length
        return None  # pragma: no cover - the last stage always answers

    def users_at(self, t: float, multiple_of: int = 1) -> tuple[int, float] | None:
        """``(users, per-user rate)`` at ``t``: the fewest users that stay within ``user_rate``,
        rounded up to a multiple of ``multiple_of`` (the worker count, so workers get equal shares)."""
        rate = self.rate_at(t)
        if rate is None:
            return None
        users = max(1, math.ceil(rate / self.user_rate - 1e-9))
        step = max(1, multiple_of)
        users = -(-users // step) * step
        return users, rate / users

    def peak_rate(self) -> float:
        """The highest target rate of the run (events/s)."""
        return self.rate * max(max(self._multiple(s.start), self._multiple(s.end)) for s in self.stages)

    def expected_events(self, step: float = 0.01) -> float:
        """The number of events the plan asks for (integral of the rate over the run)."""
        n = max(1, int(self.duration / step))
        dt = self.duration / n
        return sum((self.rate_at((i + 0.5) * dt) or 0.0) * dt for i in range(n))
