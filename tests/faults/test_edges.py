"""Which toxiproxy proxies a network fault on an edge covers (no stack needed)."""

import pytest
from chaoslib.exceptions import ActivityFailed

from faults.local.proxies import check_edge, edge_members

MINIMAL = ["clickhouse", "kafka", "postgres"]
HA = [*MINIMAL, "clickhouse_2", "kafka_2", "kafka_3", "postgres_2"]


@pytest.mark.parametrize(("edge", "names", "expected"), [
    ("kafka", MINIMAL, ["kafka"]),
    ("kafka", HA, ["kafka", "kafka_2", "kafka_3"]),
    ("postgres", HA, ["postgres", "postgres_2"]),
    ("clickhouse_2", HA, ["clickhouse_2"]),
    ("clickhouse_2", MINIMAL, []),
    ("kafka", ["kafka", "kafka_connect", "kafkaesque"], ["kafka"]),
])
def test_an_edge_covers_every_member_and_a_member_only_itself(edge: str, names: list[str],
                                                               expected: list[str]) -> None:
    assert edge_members(edge, names) == expected


@pytest.mark.parametrize("edge", ["redis", "kafka_1", "kafka_10", "postgres-2", "", "KAFKA"])
def test_unknown_edges_are_refused_by_name(edge: str) -> None:
    with pytest.raises(ActivityFailed, match="unknown edge"):
        check_edge(edge, "test")
