"""What a component of the local stack is, and the helpers the component modules share.

Each :class:`Component` says how to prepare its data (once), the command the
supervisor runs, the ports it binds, where Prometheus scrapes it, and three
checks used by ``up`` and ``status``:

``probe``     the process answers at all (used while starting);
``bootstrap`` idempotent set-up once it answers (topics, roles, schemas);
``health``    the real health check reported by ``status``.

One module per component (``stack/components/<name>.py``); a profile is a list of
components (:mod:`stack.profiles`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from stack.context import StackContext
from stack.errors import ComponentError
from stack.paths import DEPLOY_LOCAL, SCHEMA_DIR

__all__ = ["SCHEMA_DIR", "Check", "Component", "chown_postgres", "exporter_checks", "render", "run_command",
           "sql_statements"]

TEMPLATES = DEPLOY_LOCAL / "templates"


Check = Callable[[StackContext], str]
"""A check returns a one-line description of what it verified, or raises."""


@dataclass
class Component:
    """One supervised process of the stack."""

    name: str
    command: list[str]
    ports: list[str]
    probe: Check
    health: Check
    bootstrap: Check | None = None
    prepare: Callable[[StackContext], None] | None = None
    user: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    stopsignal: str = "TERM"
    stopwaitsecs: int = 30
    startup_timeout: float = 60.0
    metrics: str | None = None  # "host:port" Prometheus scrapes, if any
    metrics_path: str = "/metrics"  # the path it scrapes there (one per scrape job: a job's components agree)
    metrics_labels: dict[str, str] = field(default_factory=dict)
    endpoint: str = ""  # shown by status
    group: str = "infra"  # supervisor group; replicas use their own
    # Pids the component owns outside supervisord's process tree (a postmaster that Patroni
    # started in its own session); ``down`` stops them too.
    pids: Callable[[StackContext], list[int]] | None = None


def render(template: str, dest: Path, **values: object) -> Path:
    """Render ``deploy/local/templates/<template>`` with ``string.Template`` into ``dest``."""
    text = Template((TEMPLATES / template).read_text()).substitute({k: str(v) for k, v in values.items()})
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    return dest


def run_command(cmd: list[str], what: str, ctx: StackContext) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ComponentError(what, f"{' '.join(cmd[:3])}... failed: {(proc.stderr or proc.stdout)[-800:]}")


def chown_postgres(path: Path) -> None:
    shutil.chown(path, "postgres", "postgres")


def sql_statements(script: str) -> list[str]:
    """Split a SQL script on ``;`` after dropping ``--`` comment lines (enough for our DDL files)."""
    body = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def exporter_checks(name: str, url: str, series: str, describe: Callable[[float], str]) -> tuple[Check, Check]:
    """``(probe, health)`` of an exporter at ``url``: it serves ``/metrics``; it serves a fresh ``series``.

    ``describe(value)`` words the health of the series' first sample (e.g. ``lag 0``).
    """
    import requests

    def probe(c: StackContext) -> str:
        requests.get(url, timeout=2).raise_for_status()
        return "serving /metrics"

    def health(c: StackContext) -> str:
        text = requests.get(url, timeout=2).text
        for line in text.splitlines():
            if line.startswith(series + "{"):
                return describe(float(line.rsplit(" ", 1)[1]))
        raise ComponentError(name, f"no fresh {series} at {url}")

    return probe, health
