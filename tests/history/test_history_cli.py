"""`resilience history` and `resilience history import` as a user types them (no stack)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.report.conftest import T0


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "resilience.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def test_import_then_table_and_page(run_writer: Callable[..., Path], tmp_path: Path) -> None:
    for i in range(4):
        run_writer(f"r{i}", rto=7.0 + i, started=T0 + 3600 * i, release="v1" if i < 2 else "v2")
    env = {"RESILIENCE_HISTORY_URL": f"sqlite:///{tmp_path / 'h.sqlite'}"}
    imported = _cli("history", "import", str(tmp_path / "reports"), env=env)
    assert imported.returncode == 0, imported.stderr
    assert "imported 4 runs and 0 gates" in imported.stderr
    shown = _cli("history", "pod_failure", "--html", str(tmp_path / "h.html"), env=env)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if "pod_failure" in line and "│" in line]
    assert len(lines) == 4 and "10 s" in lines[0] and "v2" in lines[0], shown.stdout  # newest first
    assert (tmp_path / "h.html").read_text().count("data:image/png;base64,") >= 4
    none = _cli("history", "no_such_scenario", "--html", str(tmp_path / "x.html"), env=env)
    assert none.returncode == 2 and "no run of no_such_scenario" in none.stderr
    bad = _cli("history", env={"RESILIENCE_HISTORY_URL": "postgresql://u@:x/y"})
    assert bad.returncode == 2 and "not a database URL" in bad.stderr
