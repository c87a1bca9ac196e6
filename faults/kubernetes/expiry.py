"""The expiry this library writes on what it leaves in a cluster, and the one rule that reads it.

A partition's NetworkPolicy and a StatefulSet held down carry the annotation ``sql-audit-resilience/expires-at``
(UTC, ``2026-12-03T04:05:06Z``): the moment the fault's ``duration`` ends, else ``k8s_policy_max_age`` after it
began. Whoever finds one past it may revert it without asking the journal: a later partition or removal
(:func:`faults.kubernetes.network_partition.sweep_expired`) and ``python -m faults.cli sweep``
(:mod:`faults.kubernetes.sweep`).
"""

import calendar
import time
from collections.abc import Mapping

from faults.kubernetes import LABEL_PREFIX

__all__ = ["EXPIRES", "expired", "expires_at", "stamp"]

EXPIRES = f"{LABEL_PREFIX}/expires-at"
_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def stamp(ts: float) -> str:
    """Unix time ``ts`` as the annotation's value."""
    return time.strftime(_FORMAT, time.gmtime(ts))


def expires_at(duration: float | None, max_age: float, now: float | None = None) -> str:
    """The annotation's value for a fault beginning ``now`` (default: the current time): ``duration`` seconds
    later, or ``max_age`` (``k8s_policy_max_age``) when the fault has none."""
    return stamp((time.time() if now is None else now) + (duration or max_age))


def expired(annotations: Mapping[str, str] | None, now: float) -> bool:
    """Whether an object with these annotations is past its expiry at ``now``.

    No annotation: never (an object written before holds had one, or someone else's). An unreadable one:
    expired (the object is this library's, found by its labels or annotations, and nothing else bounds it).
    """
    value = (annotations or {}).get(EXPIRES)
    if not value:
        return False
    try:
        return calendar.timegm(time.strptime(value, _FORMAT)) <= now
    except ValueError:
        return True
