"""Reports of resilience runs: ``report.html`` for a person, JUnit XML and a gate index for CI.

- :func:`render_report` writes a run directory's self-contained ``report.html``.
- :func:`write_junit` writes one JUnit testcase per scenario of a gate.
- :func:`render_index` writes the gate's index page linking every report.
- :class:`ScenarioResult` is one scenario's outcome, read from its run directory.

The run directory they read is described in ``docs/run-directory.md``; what the
report shows and the JUnit mapping are in ``docs/report.md``.
"""

from __future__ import annotations

from resilience.report.html import overall_outcome, render_index, render_report
from resilience.report.junit import write_junit
from resilience.report.model import ScenarioResult

__all__ = ["ScenarioResult", "overall_outcome", "render_index", "render_report", "write_junit"]
