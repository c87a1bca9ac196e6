"""Cluster settings: bad values are refused with the variable's name (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import ClusterError, ClusterSettings


def test_defaults_and_address_plan() -> None:
    s = ClusterSettings.from_env(env={"RESILIENCE_DATA_ROOT": "/var/tmp/x"})
    assert s.state_dir == Path("/var/tmp/x/cluster")
    assert (s.host_ip, s.node_ip, s.pod_gateway) == ("10.87.0.1", "10.87.0.10", "10.88.0.1")
    assert (s.api_service_ip, s.dns_service_ip) == ("10.96.0.1", "10.96.0.10")
    assert s.local_api_server == "https://127.0.0.1:16443"
    assert len(s.host_veth) <= 15


@pytest.mark.parametrize(("env", "named"), [
    ({"RESILIENCE_CLUSTER_NAME": "Bad_Name"}, "RESILIENCE_CLUSTER_NAME"),
    ({"RESILIENCE_CLUSTER_NAME": "much-too-long-a-name"}, "RESILIENCE_CLUSTER_NAME"),
    ({"RESILIENCE_CLUSTER_POD_CIDR": "10.88.0.0/33"}, "RESILIENCE_CLUSTER_POD_CIDR"),
    ({"RESILIENCE_CLUSTER_POD_CIDR": "8.8.8.0/24"}, "RESILIENCE_CLUSTER_POD_CIDR"),
    ({"RESILIENCE_CLUSTER_SERVICE_CIDR": "10.88.0.0/25"}, "RESILIENCE_CLUSTER_SERVICE_CIDR"),
    ({"RESILIENCE_CLUSTER_API_PORT": "http"}, "RESILIENCE_CLUSTER_API_PORT"),
    ({"RESILIENCE_CLUSTER_API_PORT": "80"}, "RESILIENCE_CLUSTER_API_PORT"),
    ({"RESILIENCE_CLUSTER_DIR": "/var/lib/cluster"}, "RESILIENCE_CLUSTER_DIR"),
])
def test_bad_values_name_their_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ClusterError, match=named):
        ClusterSettings.from_env(env=env)
