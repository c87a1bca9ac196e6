"""Fixtures for the Spring Boot service's tests (helpers in ``spring_harness.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.core import LocalStack
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
