"""Fixtures for the Spring Boot service's tests (helpers in ``spring_harness.py``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stack.core import LocalStack
from stack.endpoints import SPAN
from stack.paths import DEFAULT_DATA_ROOT
from tests.spring.spring_harness import SpringService, build_jar


@pytest.fixture(scope="session")
def spring_jar() -> Path:
    """The service's jar, built by ``services/spring/build.sh`` (cached by the hash of its sources)."""
    return build_jar()


@pytest.fixture
def spring(stack: LocalStack, spring_jar: Path) -> Iterator[SpringService]:
    """A fresh topic, dead-letter topic, consumer group and store proxies; replicas are started by the test
    and all stopped, proxies and topics deleted, whatever happened."""
    service = SpringService(stack, spring_jar)
    try:
        yield service
    finally:
        service.close()


@pytest.fixture(scope="module")
def spring_stack(test_port_base: int, keep_stack: bool, spring_jar: Path,
                 claim_resource: Callable[[str], None]) -> Iterator[LocalStack]:
    """A whole local stack running the Spring service (``resilience up --service spring``), at the test port
    base + 60 (so it never collides with the session's Python stack), fresh, stopped and purged at the end of
    the module unless --keep-stack (then a running one is reused). Per module, not per session: three idle JVMs
    beside the rest of the session would disturb the tests that judge a quiet baseline, and the tests of
    ``tests/stack`` start a second stack at the same port base (the CI run of 2026-12-02 18:20 failed on that)."""
    port_base = test_port_base + SPAN
    data_dir = Path(os.environ.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT)) / f"test-spring-{port_base}"
    keep = keep_stack
    claim_resource(f"port-{port_base}")
    st = LocalStack(port_base=port_base, data_dir=data_dir, service="spring")
    if not (keep and st.is_running()):
        st.down(purge=True)
        st = LocalStack(port_base=port_base, data_dir=data_dir, service="spring")
        status = st.up()
        assert status.healthy, status.as_dict()
    assert st.ctx.service == "spring"
    try:
        yield st
    finally:
        if not keep:
            st.down(purge=True)
