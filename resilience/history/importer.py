"""``resilience history import DIR...``: put existing run directories into the history store.

Every directory under the given ones that holds a ``summary.json`` and a ``run.json`` is a run
(``docs/run-directory.md``); a trials directory of ``run --repeat`` is skipped (its trials are
runs of their own and are imported one by one, grouped by it); a directory without summary.json
(a run that crashed before it was judged) is reported and skipped. Importing twice replaces the
rows: the store is keyed by run id. A gate directory (``gate-<time>``) is recorded as a gate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from resilience.history.gates import record_gate_dir
from resilience.history.record import run_record
from resilience.history.store import HistoryStore
from resilience.rundir import read_json

logger = logging.getLogger(__name__)

__all__ = ["ImportReport", "import_dirs", "run_dirs"]


@dataclass
class ImportReport:
    """What an import did."""

    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    gates: list[str] = field(default_factory=list)


def run_dirs(root: Path) -> Iterator[Path]:
    """Every directory at or under ``root`` with a run.json, parents before children, sorted by name."""
    root = Path(root)
    if (root / "run.json").is_file():
        yield root
    if root.is_dir():
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            yield from run_dirs(child)


def import_dirs(store: HistoryStore, roots: list[Path]) -> ImportReport:
    """Import every run directory under ``roots`` (see the module doc)."""
    report = ImportReport()
    gates: dict[Path, list[str]] = {}
    gate_versions: dict[Path, dict[str, object]] = {}
    for root in roots:
        for d in run_dirs(root):
            run = read_json(d / "run.json")
            if isinstance(run, dict) and "trials" in run:
                continue
            if not (d / "summary.json").is_file():
                report.skipped.append((str(d), "no summary.json: the run was never judged"))
                continue
            try:
                rec = run_record(d)
            except ValueError as exc:
                report.skipped.append((str(d), str(exc)))
                continue
            store.record_run(rec)
            report.imported.append(rec.run_id)
            if rec.gate_id:
                gate_dir = next(p for p in (d.parent, d.parent.parent) if p.name == rec.gate_id)
                gates.setdefault(gate_dir, []).append(rec.run_id)
                gate_versions.setdefault(gate_dir, {k: rec.fields.get(k) for k in ("suite_version", "git_commit",
                                                                                     "service_version", "release")})
    for gate_dir, run_ids in gates.items():
        record_gate_dir(store, gate_dir, run_ids, known_versions=gate_versions[gate_dir])
        report.gates.append(gate_dir.name)
    return report
