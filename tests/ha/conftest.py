"""The ``ha`` stack for the HA tests: one per session at its own port base, torn down in ``finally``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stack.core import LocalStack
from stack.paths import DEFAULT_DATA_ROOT

HA_PORT_BASE = int(os.environ.get("RESILIENCE_TEST_HA_PORT_BASE", "19600"))


@pytest.fixture(scope="session")
def ha_stack(claim_resource: Callable[[str], None]) -> Iterator[LocalStack]:
    """A fresh, healthy ``ha`` stack (Patroni pair, two ClickHouse shards of two replicas, three brokers)."""
    data_dir = Path(os.environ.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT)) / f"test-ha-{HA_PORT_BASE}"
    claim_resource(f"port-{HA_PORT_BASE}")
    st = LocalStack(port_base=HA_PORT_BASE, data_dir=data_dir, profile="ha")
    st.down(purge=True)
    st = LocalStack(port_base=HA_PORT_BASE, data_dir=data_dir, profile="ha")
    try:
        status = st.up()
        assert status.healthy, status.as_dict()
        yield st
    finally:
        st.down(purge=True)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A journal of the test's own, so cleanup touches only what the test did."""
    return tmp_path / "faults"
