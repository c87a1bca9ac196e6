"""pytest wiring shared by every test: options, markers and the real local stack.

The ``stack`` fixture starts one real embedded stack per test session (Kafka,
PostgreSQL, ClickHouse, Prometheus, toxiproxy) on its own port base and data
directory, and stops it — verified by pid — when the session ends, whatever
happened. Tests that break the stack must put it back (faults roll back in
``finally``).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from stack.core import LocalStack
from stack.paths import DEFAULT_DATA_ROOT

STACK_KEY = pytest.StashKey[LocalStack]()
DEFAULT_TEST_PORT_BASE = 19500


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience")
    group.addoption("--stack-port-base", type=int, default=None,
                    help=f"port base of the test stack (default {DEFAULT_TEST_PORT_BASE}; "
                         "ini: stack_port_base; env: RESILIENCE_TEST_PORT_BASE)")
    group.addoption("--keep-stack", action="store_true", default=None,
                    help="leave the test stack running and its data in place after the session (ini: keep_stack)")
    parser.addini("stack_port_base", "port base of the test stack", default=str(DEFAULT_TEST_PORT_BASE))
    parser.addini("keep_stack", "leave the test stack running after the session", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stack: needs the real local stack (one per session, started by a fixture)")
    config.addinivalue_line("markers", "slow: takes more than a minute")
    config.addinivalue_line("markers", "ha: needs the ha profile stack (Patroni, replicated ClickHouse, three "
                                       "brokers; tests/ha starts its own at port base 19600)")
    config.addinivalue_line("markers", "k8s: needs a real kube-apiserver (etcd + kube-apiserver from "
                            "deploy/k8s/envtest/install.sh, started by a session fixture)")
    config.addinivalue_line("markers", "k8s_cluster: needs the real single-node cluster (tests/cluster)")
    config.addinivalue_line("markers", "spring: runs the Spring Boot service (services/spring, jar built with Maven)")
    config.addinivalue_line("markers", "gate: a whole scenario of the catalogue (deselected by default; -m gate)")
    config.addinivalue_line("markers", "extended: long proofs kept out of the README's test command (deselected by "
                                       "default; `make test-extended` or -m extended runs them; docs/testing.md)")
    config.addinivalue_line("markers", "interrupt_matrix: the interrupted-runner cases CI leaves out (deselected by "
                                       "default; -m interrupt_matrix; tests/runner/test_interrupted.py)")


def stack_port_base(config: pytest.Config) -> int:
    opt = config.getoption("--stack-port-base")
    if opt is not None:
        return int(opt)
    return int(os.environ.get("RESILIENCE_TEST_PORT_BASE", config.getini("stack_port_base")))


def _keep(config: pytest.Config) -> bool:
    opt = config.getoption("--keep-stack")
    return bool(opt) if opt is not None else bool(config.getini("keep_stack"))


LOCK_DIR = Path(tempfile.gettempdir()) / "sql-audit-resilience-tests"
_claims: list[IO[str]] = []  # held (open, flocked) until this session's process ends
_claimed: set[str] = set()


def claim(resource: str) -> None:
    """Take ``resource`` (``port-19500``, ``cluster-test-cluster``) for this test session, or stop the session.

    Every session stack starts by purging whatever runs at its port base, so a second session on the same
    port base (a colleague's, another checkout's) would tear down the first one's stack mid-run and fail its
    tests in a cascade. An exclusive ``flock``, released by the kernel when the process dies, makes the second
    session stop at once and say who holds the resource instead.
    """
    if resource in _claimed:
        return  # ours already (a module-scoped stack started again at the same port base)
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fh = (LOCK_DIR / f"{resource}.lock").open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        pytest.exit(f"{resource} is in use by another test session ({holder}; lock {LOCK_DIR / resource}.lock): "
                    "give this one its own with --stack-port-base N or RESILIENCE_TEST_PORT_BASE=N "
                    "(and RESILIENCE_DATA_ROOT)", returncode=3)
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} in {os.getcwd()} since {time.strftime('%H:%M:%S')}")
    fh.flush()
    _claims.append(fh)
    _claimed.add(resource)


@pytest.fixture(scope="session")
def claim_resource() -> Callable[[str], None]:
    """:func:`claim` for the test packages' own stacks (``claim_resource(f"port-{port_base}")``)."""
    return claim


@pytest.fixture(scope="session")
def test_port_base(request: pytest.FixtureRequest) -> int:
    """The session stack's port base (--stack-port-base, RESILIENCE_TEST_PORT_BASE, ini); other test stacks
    take theirs from it. A fixture, so test packages never import this conftest by name."""
    return stack_port_base(request.config)


@pytest.fixture(scope="session")
def keep_stack(request: pytest.FixtureRequest) -> bool:
    """Whether test stacks are left running at the end (--keep-stack)."""
    return _keep(request.config)


@pytest.fixture(scope="session")
def gate_reports() -> Path:
    """Where ``-m gate`` runs write their run directories (``reports/pytest-gate/``)."""
    from stack.paths import REPO_ROOT

    path = REPO_ROOT / "reports" / "pytest-gate"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    """A running, healthy local stack, fresh for this session (its data dir starts empty)."""
    port_base = stack_port_base(request.config)
    data_dir = Path(os.environ.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT)) / f"test-{port_base}"
    keep = _keep(request.config)
    claim(f"port-{port_base}")
    st = LocalStack(port_base=port_base, data_dir=data_dir)
    if not (keep and st.is_running()):
        st.down(purge=True)  # a previous session killed mid-way may have left one behind
        st = LocalStack(port_base=port_base, data_dir=data_dir)
        status = st.up()
        assert status.healthy, status.as_dict()
    request.config.stash[STACK_KEY] = st
    try:
        yield st
    finally:
        if not keep:
            st.down(purge=True)
