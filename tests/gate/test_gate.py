"""The experiment catalogue as a pytest gate: one test case per scenario.

Not part of the default run (each scenario takes two to three minutes): select it with
``pytest -m gate`` (add ``--junitxml=gate.xml`` for CI). ``resilience gate`` does the same
with an HTML index; this form fits pipelines that already collect pytest results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resilience.experiments import catalogue
from resilience.gate import LONG
from resilience.runner import RunOptions, run
from stack.core import LocalStack

# the session stack's profile; `long` ones as `resilience gate` does (only by name or --tag long)
EXPERIMENTS = [e for e in catalogue() if e.ext.profile == "minimal" and LONG not in e.ext.tags]


@pytest.mark.gate
@pytest.mark.stack
@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=[e.name for e in EXPERIMENTS])
def test_scenario_meets_its_slos(experiment, stack: LocalStack, gate_reports: Path) -> None:  # type: ignore[no-untyped-def]
    result = run(RunOptions(experiment=str(experiment.path), port_base=stack.endpoints.port_base,
                            data_dir=stack.data_dir, reports_dir=gate_reports))
    not_passed = [f"{v['slo']}: {v['outcome']} ({v['reason'] or v['measured']})"
                  for v in result.summary["verdicts"] if v["outcome"] != "pass"]
    assert result.exit_code == 0, (f"{experiment.name} -> {result.outcome.value}; report {result.run_dir}/report.html\n"
                                   + "\n".join(not_passed) + "\n" + json.dumps(result.summary.get("errors")))
