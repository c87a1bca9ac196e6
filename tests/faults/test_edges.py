"""The edges of the audit service (target.topology): what a network fault may name, and which proxies it covers."""

import pytest
from chaoslib.exceptions import ActivityFailed

from faults import arguments
from faults.kubernetes.chaosmesh import DIRECTIONS
from target import topology
from target.kubernetes import KubeSettings
from target.topology import edge_members

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


@pytest.mark.parametrize("edge", ["redis", "kafka_1", "kafka_10", "postgres-2", "", "KAFKA", None, 3])
def test_unknown_edges_are_refused_by_name(edge: object) -> None:
    with pytest.raises(ValueError, match="not an edge"):
        topology.parse_edge(edge)  # type: ignore[arg-type]
    with pytest.raises(ActivityFailed, match=r"^partition_network: edge=.*: unknown edge; edges: kafka, postgres"):
        arguments.edge("partition_network", edge)


@pytest.mark.parametrize(("stream", "expected"), [("upstream", ["upstream"]), ("downstream", ["downstream"]),
                                                  ("both", ["upstream", "downstream"])])
def test_streams_expand_both_into_the_two_directions(stream: str, expected: list[str]) -> None:
    assert topology.streams(stream) == expected


def test_every_stream_a_fault_may_name_has_a_chaos_mesh_direction() -> None:
    assert list(DIRECTIONS) == list(topology.STREAM_CHOICES)
    assert DIRECTIONS == {"upstream": "to", "downstream": "from", "both": "both"}


def test_kubernetes_has_the_same_edges_and_refuses_a_member_proxy_by_saying_so() -> None:
    settings = KubeSettings.from_configuration({"k8s_namespace": "ns"})
    assert tuple(settings.edges) == topology.EDGES
    with pytest.raises(ActivityFailed, match="'postgres_2' is one member's proxy of the local ha stack"):
        settings.edge("postgres_2", "partition")
