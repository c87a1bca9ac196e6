"""Every backend function has exactly its public activity's signature (no stack or cluster needed).

:mod:`faults.engine` calls ``faults/<target>/<fault>.py:<function>`` with the public activity's
arguments by name, so a backend that lacks a parameter (or names, orders or defaults it otherwise)
breaks only when that argument is used. This keeps the three signatures of each fault equal.
"""

import importlib
import inspect

import pytest

import faults

TARGETS = ("local", "kubernetes")
NO_BACKEND = {("kubernetes", "backup"), ("kubernetes", "store_loss"), ("kubernetes", "heap")}
"""Faults a target does not implement (the engine refuses them by name before anything is touched)."""

ACTIVITIES = [(module, function) for module in faults.ACTIVITY_MODULES
              for function in importlib.import_module(module).__all__]


def _shape(function: object) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("module", "function"), ACTIVITIES, ids=[f"{m}.{f}" for m, f in ACTIVITIES])
def test_backend_signature_equals_the_public_one(target: str, module: str, function: str) -> None:
    fault = module.rsplit(".", 1)[-1]
    if (target, fault) in NO_BACKEND:
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"faults.{target}.{fault}")
        return
    public = getattr(importlib.import_module(module), function)
    backend = getattr(importlib.import_module(f"faults.{target}.{fault}"), function)
    assert _shape(backend) == _shape(public), f"faults.{target}.{fault}.{function} differs from {module}.{function}"
