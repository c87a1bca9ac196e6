"""What the history keeps of a run: read from its run directory, plus the versions and the environment.

:func:`run_record` reads ``run.json`` and ``summary.json`` (``docs/run-directory.md``) with the
report's tolerant reader, so a run written by an older version of the suite imports as well as
one written now. :func:`versions` says what was tested (suite version, the checkout's git commit,
the service's version when known, the release label) and :func:`environment` where.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resilience import __version__
from resilience.report.model import as_dict, as_list, load_run_dir, num
from resilience.score import run_score
from stack.paths import REPO_ROOT

__all__ = ["RELEASE_ENV", "SERVICE_VERSION_ENV", "RunRecord", "environment", "git_commit", "run_record", "versions"]

RELEASE_ENV = "RESILIENCE_RELEASE"
"""The release under test, as a person names it (``v2.4.0``); default: the service version."""
SERVICE_VERSION_ENV = "RESILIENCE_SERVICE_VERSION"
"""The service's version or image (``registry/sql-audit:2.4.0``) when the suite cannot read it."""


@functools.lru_cache(maxsize=1)
def git_commit(repo: Path = REPO_ROOT) -> str | None:
    """The commit of the checkout the suite runs from (``None`` outside git, or without git)."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) >= 7 else None


def versions(target: str, environ: dict[str, str] | None = None) -> dict[str, str | None]:
    """What was tested: ``suite_version``, ``git_commit``, ``service_version`` and ``release``.

    The service version is ``RESILIENCE_SERVICE_VERSION`` when set (a cluster's image tag); on
    the local target the reference service is part of this checkout, so it is ``sqlaudit@<commit>``.
    The release is ``RESILIENCE_RELEASE`` when set, else the service version.
    """
    env = os.environ if environ is None else environ
    commit = git_commit()
    service = env.get(SERVICE_VERSION_ENV) or (f"sqlaudit@{commit[:12]}" if target == "local" and commit else None)
    return {"suite_version": __version__, "git_commit": commit, "service_version": service,
            "release": env.get(RELEASE_ENV) or service}


def environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Where the run ran: host, platform, Python, CPUs, and whether in CI."""
    env = os.environ if environ is None else environ
    return {"host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "ci": bool(env.get("CI"))}


@dataclass
class RunRecord:
    """One run as the history stores it (the columns of ``runs`` and its measurements)."""

    run_id: str
    scenario: str
    experiment: str
    fields: dict[str, Any]
    measurements: list[dict[str, Any]] = field(default_factory=list)
    gate_id: str | None = None


def run_record(run_dir: Path, versions_now: dict[str, str | None] | None = None,
               environment_now: dict[str, Any] | None = None) -> RunRecord:
    """The record of the run in ``run_dir``.

    Args:
        run_dir: a run directory with a summary.json.
        versions_now, environment_now: the versions and environment to record when run.json has
            none (the run that is being written now); an imported old run records them as unknown.

    Raises:
        ValueError: there is no readable summary.json (the run was never judged) or no run id.
    """
    files = load_run_dir(Path(run_dir))
    if files.summary is None:
        raise ValueError(f"{run_dir}: no readable summary.json: the run was never judged")
    run, summary = files.run_doc, files.summary_doc
    run_id = str(run.get("run_id") or files.run_dir.name)
    verdicts = files.verdicts
    fault = as_dict(run.get("fault"))
    load, done = as_dict(run.get("load")), as_dict(summary.get("load"))
    recorded_versions = as_dict(run.get("versions")) or versions_now or {}
    aborted = next((str(v.get("reason") or "") for v in verdicts if v.get("slo") in ("safeguard", "kill_switch")
                    and v.get("outcome") != "pass"), None)
    exit_code = summary.get("exit_code")
    score = summary.get("score") if isinstance(summary.get("score"), int | float) else run_score(verdicts)
    fields: dict[str, Any] = {
        "title": run.get("title") if isinstance(run.get("title"), str) else None,
        "target": files.target, "profile": as_dict(run.get("stack")).get("profile"),
        "outcome": files.outcome.value,
        "exit_code": exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else 2,
        "score": score, "aborted_by": aborted,
        "started_at": files.started_at or 0.0, "ended_at": files.ended_at,
        "fault_name": fault.get("name"), "fault_start": num(fault.get("start")), "fault_end": num(fault.get("end")),
        "load_shape": load.get("shape") or done.get("shape"),
        "load_asked_eps": num(done.get("asked_eps")) or num(load.get("rate_eps")),
        "load_achieved_eps": num(done.get("achieved_eps")),
        "load_acknowledged": _int(done.get("acknowledged")), "load_failed": _int(done.get("failed")),
        "release": recorded_versions.get("release"), "suite_version": recorded_versions.get("suite_version"),
        "git_commit": recorded_versions.get("git_commit"), "service_version": recorded_versions.get("service_version"),
        "environment": as_dict(run.get("environment")) or environment_now or {},
        "errors": [str(e) for e in as_list(summary.get("errors"))],
        "trial_group": _trial_group(files.run_dir), "run_dir": str(files.run_dir.resolve()),
    }
    measurements = [{"slo": str(v.get("slo") or "?"), "outcome": str(v.get("outcome") or "inconclusive"),
                     "measured": _measured(v), "objective": _str(v.get("objective")),
                     "unit": _str(v.get("unit")), "reason": _str(v.get("reason"))} for v in verdicts]
    experiment = str(run.get("experiment_name") or Path(str(run.get("experiment") or files.scenario)).stem)
    return RunRecord(run_id, files.scenario, experiment, fields, measurements, _gate_id(files.run_dir))


def _measured(verdict: dict[str, Any]) -> float | None:
    """The value of a verdict; an unrecovered RTO (``null`` with a failed outcome) is +inf."""
    value = num(verdict.get("measured"))
    if value is None and verdict.get("outcome") == "fail" and str(verdict.get("slo", "")).startswith("rto_"):
        return float("inf")
    return value


def _trial_group(run_dir: Path) -> str | None:
    """The run id of the repeated run this run is a trial of (its parent directory lists trials)."""
    from resilience.rundir import read_json

    parent = read_json(run_dir.parent / "run.json")
    if isinstance(parent, dict) and "trials" in parent:
        return str(parent.get("run_id") or run_dir.parent.name)
    return None


def _gate_id(run_dir: Path) -> str | None:
    """The gate directory (``gate-<time>``) this run was made in, if any."""
    for parent in (run_dir.parent, run_dir.parent.parent):
        if parent.name.startswith("gate-"):
            return parent.name
    return None


def _int(value: Any) -> int | None:
    f = num(value)
    return int(f) if f is not None else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
