"""The ``--secure`` stack for tests/secure: one per session at its own port base, torn down in ``finally``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stack.core import LocalStack
from stack.paths import DEFAULT_DATA_ROOT

SECURE_PORT_BASE = int(os.environ.get("RESILIENCE_TEST_SECURE_PORT_BASE", "19700"))


@pytest.fixture(scope="session")
def secure_stack(claim_resource: Callable[[str], None]) -> Iterator[LocalStack]:
    """A fresh, healthy minimal stack made with ``--secure`` (Kafka SASL_SSL, ClickHouse passwords)."""
    data_dir = Path(os.environ.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT)) / f"test-secure-{SECURE_PORT_BASE}"
    claim_resource(f"port-{SECURE_PORT_BASE}")
    st = LocalStack(port_base=SECURE_PORT_BASE, data_dir=data_dir)
    st.down(purge=True)
    st = LocalStack(port_base=SECURE_PORT_BASE, data_dir=data_dir, secure=True)
    try:
        status = st.up()
        assert status.healthy, status.as_dict()
        assert st.ctx.secure
        yield st
    finally:
        st.down(purge=True)
