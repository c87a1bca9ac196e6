"""Argument checks of the fault activities: each public activity runs them once, before any backend.

Every public activity (``faults/<fault>.py``) checks every argument it is given with these
functions and hands the normalised values on to :mod:`faults.engine`; the backends
(``faults/local``, ``faults/kubernetes``) get valid arguments and check only what needs the
system (a broker that this stack lacks, an edge already partitioned, a method this target has not).
A bad argument raises ``ActivityFailed`` before anything is journaled or touched, with a message
that names the activity, the argument, the value and what is allowed::

    add_latency: latency_ms=0: expected an integer >= 1
    partition_network: edge='redis': unknown edge; edges: kafka, postgres, clickhouse, ...
"""

import math
from collections.abc import Sequence
from typing import Any, NoReturn

from chaoslib.exceptions import ActivityFailed

from target import topology

__all__ = ["boolean", "choice", "count_or_percentage", "duration", "edge", "integer", "name", "number",
           "only_with", "optional_index", "optional_name", "percentage", "stream"]


def _refuse(fault: str, argument: str, value: Any, problem: str) -> NoReturn:
    raise ActivityFailed(f"{fault}: {argument}={value!r}: {problem}")


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def edge(fault: str, value: Any) -> str:
    """An edge of the audit service (``kafka``, ``postgres``, ``clickhouse``) or one member's proxy
    (``postgres_2``): :mod:`target.topology`."""
    try:
        topology.parse_edge(value)
    except ValueError:
        _refuse(fault, "edge", value, f"unknown edge; edges: {', '.join(topology.EDGES)}, or one member's proxy "
                                      "on the ha profile (kafka_2, postgres_2, clickhouse_2...)")
    return str(value)


def stream(fault: str, value: Any) -> str:
    """``upstream``, ``downstream`` or ``both`` (:data:`target.topology.STREAM_CHOICES`)."""
    if value not in topology.STREAM_CHOICES:
        _refuse(fault, "stream", value, f"expected {', '.join(topology.STREAM_CHOICES[:-1])} "
                                        f"or {topology.STREAM_CHOICES[-1]}")
    return str(value)


def choice(fault: str, argument: str, value: Any, choices: Sequence[str]) -> str:
    """One of ``choices`` (a mode, a method)."""
    if not isinstance(value, str) or value not in choices:
        _refuse(fault, argument, value, f"unknown {argument}; {argument}s: {', '.join(choices)}")
    return value


def boolean(fault: str, argument: str, value: Any) -> bool:
    """``true`` or ``false`` (a string such as ``"false"`` is refused: it would read as true)."""
    if not isinstance(value, bool):
        _refuse(fault, argument, value, "expected true or false")
    return value


def name(fault: str, argument: str, value: Any) -> str:
    """A non-empty string (a program, a group, a checker)."""
    if not isinstance(value, str) or not value.strip():
        _refuse(fault, argument, value, "expected a non-empty name")
    return value


def optional_name(fault: str, argument: str, value: Any) -> str | None:
    """``None`` or a non-empty string."""
    return None if value is None else name(fault, argument, value)


def integer(fault: str, argument: str, value: Any, minimum: int, maximum: int | None = None,
            bound: str | None = None) -> int:
    """An integer in ``minimum..maximum`` (a float with no fraction, ``200.0``, is taken as ``200``).

    ``bound`` names where ``maximum`` comes from (``latency_ms``) in the message."""
    whole = _is_number(value) and float(value).is_integer()
    if not whole or value < minimum or (maximum is not None and value > maximum):
        if maximum is None:
            expected = f"an integer >= {minimum}"
        else:
            expected = f"an integer in {minimum}..{maximum}" + (f" ({bound})" if bound else "")
        _refuse(fault, argument, value, f"expected {expected}")
    return int(value)


def optional_index(fault: str, argument: str, value: Any) -> int | None:
    """``None`` or an index ``>= 0`` (a replica, a broker); whether it exists is the backend's to say."""
    return None if value is None else integer(fault, argument, value, 0)


def number(fault: str, argument: str, value: Any) -> int | float:
    """A finite number (an integer stays an integer)."""
    if not _is_number(value):
        _refuse(fault, argument, value, "expected a number")
    return value


def percentage(fault: str, argument: str, value: Any) -> float:
    """A number in (0, 100]."""
    if not _is_number(value) or not 0 < value <= 100:
        _refuse(fault, argument, value, "expected a number in (0, 100]")
    return float(value)


def duration(fault: str, value: Any) -> float | None:
    """``None`` (no expiry) or a positive number of seconds."""
    if value is None:
        return None
    if not _is_number(value) or value <= 0:
        _refuse(fault, "duration", value, "expected a number of seconds > 0, or null for no expiry")
    return float(value)


def count_or_percentage(fault: str, count: Any, percentage_: Any) -> tuple[int | None, float | None]:
    """Exactly one of ``count`` (an integer >= 1) and ``percentage`` (in (0, 100]), normalised."""
    if (count is None) == (percentage_ is None):
        raise ActivityFailed(f"{fault}: count={count!r}, percentage={percentage_!r}: give exactly one of count "
                             "or percentage")
    if count is not None:
        return integer(fault, "count", count, 1), None
    return None, percentage(fault, "percentage", percentage_)


def only_with(fault: str, argument: str, value: Any, allowed: bool, when: str, why: str) -> None:
    """Refuse ``argument`` (set, not ``None``) unless ``allowed``: it ``only applies to {when}`` (``why``)."""
    if value is not None and not allowed:
        _refuse(fault, argument, value, f"{argument} only applies to {when} ({why})")
