"""The run directory: where one run writes everything it knows (``docs/run-directory.md``).

Every JSON file goes through :meth:`RunDirectory.write`, which redacts the secrets the run knows
(:mod:`resilience.secrets`) and writes ``Infinity``/``NaN`` as ``null``; the runner's log goes
to ``runner.log`` through the same redaction.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resilience.secrets import Redactor

__all__ = ["RunDirectory", "json_safe", "read_json"]


def json_safe(obj: Any) -> Any:
    """Infinity and NaN are not JSON: write them as null (the verdict's reason says why)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def read_json(path: Path) -> Any:
    """The JSON content of ``path``, or ``None`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class RunDirectory:
    """One run's directory and the redactor of everything written into it."""

    path: Path
    run_id: str
    redactor: Redactor

    @classmethod
    def create(cls, reports_dir: Path, experiment: str, redactor: Redactor) -> RunDirectory:
        """``<reports_dir>/<UTC time>-<experiment>`` (with a random suffix if that exists already)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        run_id = f"{stamp}-{experiment}-{uuid.uuid4().hex[:4]}"
        path = reports_dir / f"{stamp}-{experiment}"  # two experiments may share a scenario, not a name
        if path.exists():
            path = reports_dir / run_id
        path.mkdir(parents=True)
        return cls(path, run_id, redactor)

    @property
    def load_dir(self) -> Path:
        return self.path / "load"

    @property
    def ledger_dir(self) -> Path:
        return self.path / "ledger"

    def write(self, name: str, data: Any) -> Path:
        """Write ``data`` as ``<name>`` (JSON), secrets masked; returns the path."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.redactor.redact(json.dumps(json_safe(data), indent=1, default=str)))
        return target

    @contextmanager
    def log(self, name: str = "runner.log") -> Iterator[None]:
        """Send the root logger's INFO records to ``<name>`` (redacted) while the block runs."""
        handler = logging.FileHandler(self.path / name)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(self.redactor.log_filter())
        handler.setLevel(logging.INFO)
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        for noisy in ("kafka", "clickhouse_driver", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()
