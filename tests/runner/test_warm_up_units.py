"""Which programs the runner warms up before a baseline (``resilience.runner._cold``), on stacks that are built but
never started: the component lists are the stack's own, only the run plan is a stand-in."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from resilience.runner import BROKER_WARM_UP_S, _cold
from stack.core import LocalStack
from target.settings import JIT_WARM_UP_S


def plan(service: str) -> SimpleNamespace:
    return SimpleNamespace(settings=SimpleNamespace(service=service, warm_up_s=JIT_WARM_UP_S.get(service, 0.0)))


@pytest.mark.parametrize(("profile", "service", "expected"), [
    ("minimal", "python", {}),
    ("minimal", "spring", {f"audit-service-{i}": JIT_WARM_UP_S["spring"] for i in range(3)}),
    ("ha", "python", {"kafka": BROKER_WARM_UP_S, "kafka-2": BROKER_WARM_UP_S, "kafka-3": BROKER_WARM_UP_S}),
    ("ha", "spring", {"kafka": BROKER_WARM_UP_S, "kafka-2": BROKER_WARM_UP_S, "kafka-3": BROKER_WARM_UP_S,
                      **{f"audit-service-{i}": JIT_WARM_UP_S["spring"] for i in range(3)}}),
])
def test_the_ha_brokers_and_the_jvm_replicas_are_warmed_and_nothing_else(
        tmp_path: Path, profile: str, service: str, expected: dict[str, float]) -> None:
    stack = LocalStack(port_base=31000, data_dir=tmp_path / "stack", profile=profile, service=service)
    cold = _cold(plan(service), stack)  # type: ignore[arg-type]
    assert {name: seconds for name, (seconds, _why) in cold.items()} == expected
    assert not (tmp_path / "stack" / "stack.json").exists()  # nothing was started or written
