"""The secure local stack, proven with real processes: its doors are shut to anyone without the credentials,
a run with a wrong one stops before any fault naming the endpoint and the user, and ``pod_failure`` passes on
it with no secret in any file of its run directory.

Which guard each test proves: without ``check_logins`` in :func:`resilience.plan.check_reachable` the
wrong-password runs would start the load and inject the fault (the RunError tests fail); without
``--secure`` reaching the stack's components, the plain clients would get in (the closed-doors test fails);
without the redactor knowing the stack's and the settings' secrets, the run directory would hold the
passwords the load and the probes used (the last test fails).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from clients import clickhouse as ch
from clients import kafka as kafka_login
from resilience.plan import RunError
from resilience.runner import RunOptions, run
from stack.core import LocalStack
from stack.security import CH_SUITE_USER, KAFKA_SUITE_USER, PROMETHEUS_SUITE_USER, suite_prometheus_auth

pytestmark = [pytest.mark.stack]


def _options(stack: LocalStack, reports: Path, **kw: object) -> RunOptions:
    return RunOptions(experiment="pod_failure", port_base=stack.endpoints.port_base, data_dir=stack.data_dir,
                      reports_dir=reports, **kw)  # type: ignore[arg-type]


def _secrets(stack: LocalStack) -> list[str]:
    return [str(v) for v in json.loads((stack.data_dir / "secrets.json").read_text()).values()]


def test_the_doors_are_shut_without_credentials(secure_stack: LocalStack) -> None:
    eps = secure_stack.endpoints
    with pytest.raises(ch.AuthError, match="user 'default'"):
        ch.check_login(eps.clickhouse_host, eps.clickhouse_port)  # no password-less user
    suite = ch.ClickHouseAuth(CH_SUITE_USER, secure_stack.ctx.secrets.clickhouse_suite_password, secure=True)
    with pytest.raises(Exception, match=r"(?i)certificate"):  # the TLS port, trusting only the system's CAs
        ch.check_login(eps.clickhouse_host, eps.port("clickhouse_tcp_secure"), suite)
    ca = str(secure_stack.data_dir / "tls" / "ca.pem")
    assert ch.check_login(eps.clickhouse_host, eps.port("clickhouse_tcp_secure"), replace(suite, ca_file=ca))
    with pytest.raises(Exception) as plain:
        kafka_login.check_login(eps.kafka_bootstrap, kafka_login.KafkaAuth(), timeout_s=3)
    assert not isinstance(plain.value, kafka_login.AuthError)  # PLAINTEXT never gets as far as a login
    with pytest.raises(kafka_login.AuthError, match="TLS handshake failed"):  # a CA we did not make
        kafka_login.login_once(eps.kafka_bootstrap, kafka_login.KafkaAuth(
            "SASL_SSL", "SCRAM-SHA-512", KAFKA_SUITE_USER, secure_stack.ctx.secrets.kafka_suite_password))
    query = f"{eps.prometheus_url}/api/v1/query"
    assert requests.get(query, params={"query": "up"}, timeout=5).status_code == 401  # Prometheus asks for a login
    suite_login = suite_prometheus_auth(secure_stack.ctx).headers()
    ok = requests.get(query, params={"query": "up"}, timeout=5, headers=suite_login)
    assert ok.status_code == 200
    assert {r["metric"]["job"] for r in ok.json()["data"]["result"] if r["value"][1] == "1"} >= {"prometheus"}, \
        "Prometheus' scrape of itself did not log in"


@pytest.mark.parametrize("variable, endpoint, user", [
    ("RESILIENCE_CLICKHOUSE_PASSWORD", "ClickHouse at 127.0.0.1:{clickhouse}", f"user '{CH_SUITE_USER}'"),
    ("RESILIENCE_KAFKA_PASSWORD", "Kafka at 127.0.0.1:{kafka}", f"user '{KAFKA_SUITE_USER}'"),
    ("RESILIENCE_PROMETHEUS_PASSWORD", "Prometheus at http://127.0.0.1:{prometheus}",
     f"user '{PROMETHEUS_SUITE_USER}'"),
])
def test_a_wrong_password_stops_the_run_before_any_fault(secure_stack: LocalStack, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, variable: str,
                                                          endpoint: str, user: str) -> None:
    eps = secure_stack.endpoints
    monkeypatch.setenv(variable, "wrong-password-4f1b")
    with pytest.raises(RunError) as err:
        run(_options(secure_stack, tmp_path / "reports", bring_up=False))
    message = str(err.value)
    where = endpoint.format(clickhouse=eps.port("clickhouse_tcp_secure"), kafka=eps.port("kafka"),
                            prometheus=eps.port("prometheus"))
    assert where in message and user in message and "refused" in message, message
    assert f"from env {variable}" in message, message
    assert "wrong-password-4f1b" not in message
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir()), \
        "a run directory was made: the run got past the pre-flight"


@pytest.mark.extended  # about 5 min, and its RTO needs a machine that is not saturated: `make test-extended`
def test_pod_failure_passes_on_the_secure_stack_with_no_secret_in_its_run_directory(
        secure_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fault journal of its own, so that this run's journal holds nothing but its own faults.
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path / "faults"))
    # 200 events/s, as tests/runner/test_run_end_to_end.py's plain run: the same bar on both stacks.
    result = run(_options(secure_stack, tmp_path / "reports", secure=True, rate=200))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    # The secrets first: whatever the verdicts, no file of the run holds one.
    secrets = _secrets(secure_stack)
    supervisor_conf = (secure_stack.ctx.conf_dir / "supervisord.conf").read_text()
    assert secure_stack.ctx.secrets.kafka_service_password in supervisor_conf  # the service really is given it
    files = [path for path in result.run_dir.rglob("*") if path.is_file()]
    assert len(files) > 10 and (result.run_dir / "runner.log").exists() and (result.run_dir / "journal.json").exists()
    leaks = [f"{path.relative_to(result.run_dir)} holds {value[:4]}..." for path in files for value in secrets
             if value.encode() in path.read_bytes()]
    assert leaks == []
    acknowledged = summary["data_loss"]["acknowledged"]
    assert acknowledged > 0 and summary["data_loss"]["lost"] == 0  # the load got in over SASL_SSL, all stored
    failing = [v for v in summary["verdicts"] if v["outcome"] != "pass"]
    assert result.exit_code == 0, (failing, summary.get("errors"))
