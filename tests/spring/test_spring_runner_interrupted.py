"""The runner interrupted during a fault that needs a JVM (the heap hog), on a Spring stack of its own (the module's).

The same cases as ``tests/runner/test_interrupted.py`` (its module doc says what each checks): the Python
reference service refuses these faults, so their interruptions are proven here. SIGKILL in CI (nothing of the
runner runs again: its watchdog must make the hog let go); SIGINT and SIGTERM with ``-m interrupt_matrix``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.core import LocalStack
from tests.runner.test_interrupted import cases, env, interrupt_case  # noqa: F401 (env: the runner's environment)

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.extended]


@pytest.mark.parametrize(("fault", "sig"), list(cases(jvm=True)))
def test_runner_interrupted_during_a_jvm_fault_leaves_nothing(spring_stack: LocalStack, env: dict[str, str],  # noqa: F811
                                                              tmp_path: Path, fault: str, sig: str) -> None:
    interrupt_case(spring_stack, env, tmp_path, fault, sig)
