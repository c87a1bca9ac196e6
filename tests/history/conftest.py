"""Fabricated run directories and a fresh SQLite history per test (no stack needed)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resilience.history.store import HistoryStore
from tests.report.conftest import PASS_VERDICTS, T0, make_run


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    """An empty, migrated SQLite history in the test's temporary directory."""
    return HistoryStore.open(f"sqlite:///{tmp_path / 'history.sqlite'}")


def write_run(root: Path, name: str, *, rto: float, flow: float = 12.0, started: float = T0,
              release: str = "v1", experiment: str = "pod_failure", outcome: str = "pass",
              extra: list[dict[str, Any]] | None = None) -> Path:
    """A run directory whose RTOs are ``rto`` and ``flow``, recorded for ``release``."""
    verdicts = copy.deepcopy(PASS_VERDICTS)
    verdicts[0]["measured"] = rto
    verdicts[1]["measured"] = flow
    if outcome == "fail":
        verdicts[0].update(outcome="fail", measured=None, reason="never recovered")
    verdicts += extra or []
    d = make_run(root, name, verdicts=verdicts, outcome=outcome)
    run = json.loads((d / "run.json").read_text())
    run.update(run_id=name, started_at=started, ended_at=started + 120, experiment_name=experiment,
               versions={"release": release, "suite_version": "0.1.0", "git_commit": "0" * 40,
                         "service_version": None})
    (d / "run.json").write_text(json.dumps(run))
    return d


@pytest.fixture
def run_writer(tmp_path: Path) -> Callable[..., Path]:
    """:func:`write_run` under ``tmp_path/reports``."""
    def factory(name: str, **kwargs: Any) -> Path:
        return write_run(tmp_path / "reports", name, **kwargs)

    return factory
