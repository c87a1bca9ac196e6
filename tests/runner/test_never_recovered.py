"""A replica stopped for good behind the suite's back: the run fails, and says what never came back.

The real ``pod_failure`` experiment, on the real stack; while the suite observes the recovery, the
test stops one replica through supervisord (as a node that never comes back would). Observed for the
scenario's whole RTO objective without the replicas coming back, the RTO fails; the rollback then
restores the replica, and the verdict says the recovery came from the rollback, not the system.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.runner import RunOptions, run
from stack.core import LocalStack

pytestmark = [pytest.mark.stack, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_a_replica_that_never_comes_back_fails_the_rto(stack: LocalStack, tmp_path: Path) -> None:
    rpc = stack.supervisor.rpc
    sabotaged: list[str] = []

    def phase(name: str, detail: str) -> None:
        if name == "activity" and detail == "rto-replicas-ready" and not sabotaged:
            rpc.stopProcess("audit-service:audit-service-0", True)  # held down; only the rollback starts it
            sabotaged.append(detail)

    try:
        result = run(RunOptions(experiment=str(REPO / "experiments" / "pod_failure.yaml"),
                                port_base=stack.endpoints.port_base, data_dir=stack.data_dir,
                                reports_dir=tmp_path / "reports", rate=150), phase=phase)
    finally:
        infos = stack.supervisor.process_info()
        if infos["audit-service-0"]["statename"] != "RUNNING":
            rpc.startProcess("audit-service:audit-service-0", True)
    assert sabotaged, "the test never stopped the replica"
    verdict = {v["slo"]: v for v in result.summary["verdicts"]}
    rto = verdict["rto_replicas_ready"]
    assert result.exit_code == 1 and rto["outcome"] == "fail", rto
    assert result.summary["rto"]["replicas_ready"]["status"] in ("never_recovered", "recovered_by_rollback"), rto
    assert "never held" in rto["reason"] or "recovered by rollback" in rto["reason"], rto
    assert rto["details"]["observed_s"] >= 60  # the whole objective was watched
