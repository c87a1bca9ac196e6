"""The import contract (pyproject.toml, [tool.importlinter]) holds, and it can fail.

The layers of docs/architecture.md are only true while something fails when they are broken:
this test runs ``lint-imports`` on the checkout (it must pass) and on a copy of the packages with
one upward import added (the stack's endpoints importing the orchestrator: it must fail, naming
that import), and a copy with a cycle between two modules of one package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("chaossqlaudit", "resilience", "probes", "faults", "loadtests", "target", "stack", "clients", "sqlaudit")
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first, so the copy's packages are found before the editable install's.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_checkout_keeps_the_contract() -> None:
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_an_upward_import_breaks_it(copy: Path) -> None:
    endpoints = copy / "stack" / "endpoints.py"
    endpoints.write_text(endpoints.read_text() + "\nimport resilience.runner  # noqa: E402,F401\n")
    proc = _lint(copy)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "stack.endpoints -> resilience.runner" in proc.stdout


def test_a_cycle_inside_a_package_breaks_it(copy: Path) -> None:
    base = copy / "stack" / "components" / "base.py"
    base.write_text(base.read_text() + "\nimport stack.profiles  # noqa: E402,F401\n")
    proc = _lint(copy)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "No cycles are allowed in stack" in proc.stdout
