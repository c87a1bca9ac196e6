"""The audit service's edges and the directions of their traffic: what the network faults can name.

The audit service talks to three dependencies; each is an *edge*: ``kafka``, ``postgres`` and
``clickhouse``. Where a dependency has several members (the local ``ha`` profile: two PostgreSQL
members, three brokers, two ClickHouse replicas) each member has its own proxy, named after the
edge with the member's number from 2 on (``postgres_2``, ``kafka_3``); the first member's proxy is
the edge's own name. A fault on an edge hits every member; on one member's proxy, only that one.

Traffic on an edge flows two ways: ``upstream`` (service -> dependency) and ``downstream``
(dependency -> service); a fault names one of them or ``both``.

This module is data and pure functions, importable by every layer: the public fault activities
check arguments against it (:mod:`faults.arguments`), the local backends map edges to toxiproxy
proxies (:mod:`faults.local.proxies`), the Kubernetes settings and backends map them to pods
(:mod:`target.kubernetes`, :mod:`faults.kubernetes.chaosmesh`).
"""

import re

__all__ = ["EDGES", "STREAMS", "STREAM_CHOICES", "edge_members", "is_member", "parse_edge", "streams"]

EDGES = ("kafka", "postgres", "clickhouse")
"""The dependencies of the audit service, by the name a fault gives them."""

STREAMS = ("upstream", "downstream")
"""The two directions of an edge's traffic: service -> dependency, dependency -> service."""

STREAM_CHOICES = (*STREAMS, "both")
"""What a fault's ``stream`` argument may say."""

_EDGE = re.compile(r"^(?P<edge>[a-z]+)(?:_(?P<member>[2-9]))?$")


def parse_edge(name: str) -> tuple[str, int | None]:
    """``(edge, member)`` of an edge name: ``("postgres", None)`` for ``postgres``, ``("postgres", 2)``
    for ``postgres_2``. Raises ``ValueError`` for anything else (``redis``, ``kafka_1``, ``kafka_10``)."""
    m = _EDGE.match(name) if isinstance(name, str) else None
    if m is None or m["edge"] not in EDGES:
        raise ValueError(f"not an edge of the audit service: {name!r}")
    return m["edge"], int(m["member"]) if m["member"] else None


def is_member(name: str) -> bool:
    """Whether ``name`` is one member's proxy (``postgres_2``) rather than a whole edge."""
    return parse_edge(name)[1] is not None


def edge_members(edge: str, names: list[str]) -> list[str]:
    """The proxies among ``names`` that ``edge`` covers: every member (``kafka``, ``kafka_2``...) for an
    edge, just itself for one member's proxy. Sorted, the first member first."""
    if is_member(edge):
        return [edge] if edge in names else []
    return sorted(n for n in names if n == edge or re.fullmatch(rf"{re.escape(edge)}_[2-9]", n))


def streams(stream: str) -> list[str]:
    """The directions ``stream`` stands for: ``["upstream"]``, ``["downstream"]``, or both for ``"both"``.

    Raises ``ValueError`` for anything else."""
    if stream == "both":
        return list(STREAMS)
    if stream not in STREAMS:
        raise ValueError(f"not a stream: {stream!r}")
    return [stream]
