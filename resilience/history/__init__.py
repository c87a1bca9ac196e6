"""The run history: every run and gate in a database, for trends, baselines and regression verdicts.

- :mod:`~resilience.history.models` — the tables; :mod:`~resilience.history.migrations` — their
  Alembic migrations (the only thing that creates or changes them).
- :mod:`~resilience.history.store` — :class:`HistoryStore` (open, write, read) and
  :func:`record_run_safely`, the runner's bounded, never-failing write.
- :mod:`~resilience.history.record` — what is kept of a run directory, and the versions and
  environment it ran with.
- :mod:`~resilience.history.importer` — ``resilience history import``.
- :mod:`~resilience.history.view` — ``resilience history``: the terminal table and ``history.html``.

``docs/history.md`` is the user's guide.
"""

from __future__ import annotations

from resilience.history.record import RunRecord, run_record, versions
from resilience.history.store import HistoryError, HistoryStore, history_url, record_run_safely

__all__ = ["HistoryError", "HistoryStore", "RunRecord", "history_url", "record_run_safely", "run_record",
           "versions"]
