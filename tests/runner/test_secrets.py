"""No secret a run really uses appears in any file it writes — and this test would see one if it did.

The experiment ``tests/runner/experiments/secret_use.yaml`` uses two real secrets the careless
way: an HTTP probe sends a bearer token to an endpoint that echoes it back (so the token is in the
Chaos Toolkit journal's output), and a Python probe connects to the stack's PostgreSQL with the
stack's password and logs the whole DSN (so the password is in the runner's log). The run with the
redactor on must leave neither value in any file; the same run with redaction switched off must
leave both (otherwise this test could not fail).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from resilience import secrets as secrets_mod
from resilience.runner import RunOptions, run
from stack.core import LocalStack

pytestmark = [pytest.mark.stack]

EXPERIMENT = Path(__file__).parent / "experiments" / "secret_use.yaml"
TOKEN = "tok-7c1e0b93-echoed-back"


@pytest.fixture
def echo_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP endpoint that answers with the Authorization header it received (and remembers it)."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            received.append(auth)
            body = json.dumps({"you_sent": auth}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/echo", received
    finally:
        server.shutdown()


def _files_holding(run_dir: Path, values: list[str]) -> list[str]:
    found = []
    for path in sorted(run_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(run_dir)} holds {v[:5]}..." for v in values if v.encode() in data]
    return found


def _run(stack: LocalStack, tmp: Path, echo_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    password = stack.ctx.secrets.postgres_password
    monkeypatch.setenv("SECRET_TEST_API_TOKEN", TOKEN)
    monkeypatch.setenv("SQLAUDIT_PG_PASSWORD", password)
    monkeypatch.setenv("SECRET_TEST_PG_PORT", str(stack.endpoints.port("postgres")))
    monkeypatch.setenv("SECRET_TEST_ECHO_URL", echo_url)
    result = run(RunOptions(experiment=str(EXPERIMENT), port_base=stack.endpoints.port_base, data_dir=stack.data_dir,
                            reports_dir=tmp))
    return result.run_dir


def test_secrets_really_used_are_in_no_file_of_the_run(stack: LocalStack, tmp_path: Path,
                                                       echo_server: tuple[str, list[str]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url, received = echo_server
    run_dir = _run(stack, tmp_path / "redacted", url, monkeypatch)
    journal = json.loads((run_dir / "journal.json").read_text())
    outputs = {r["activity"]["name"]: r for r in journal["run"]}
    assert received == [f"Bearer {TOKEN}"], "the token was not sent: the test proves nothing"
    assert outputs["connect-to-postgres-with-the-password"]["output"] is True, "the password was not used"
    assert "***" in json.dumps(outputs["call-the-api-with-the-token"]["output"]), "the echoed token was not masked"
    assert _files_holding(run_dir, [TOKEN, stack.ctx.secrets.postgres_password]) == []


def test_without_redaction_the_same_run_leaks_both(stack: LocalStack, tmp_path: Path,
                                                   echo_server: tuple[str, list[str]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard's own proof: switch the redactor off and the check above finds both values."""
    monkeypatch.setattr(secrets_mod.Redactor, "redact", lambda self, text: text)
    monkeypatch.setattr(secrets_mod.Redactor, "log_filter", lambda self: secrets_mod.logging.Filter())
    url, _ = echo_server
    run_dir = _run(stack, tmp_path / "plain", url, monkeypatch)
    leaks = _files_holding(run_dir, [TOKEN, stack.ctx.secrets.postgres_password])
    assert any("journal.json" in leak and "tok-7" in leak for leak in leaks), leaks
    assert any("runner.log" in leak for leak in leaks), leaks
