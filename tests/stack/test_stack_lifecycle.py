"""Start, inspect and stop whole stacks: side by side, idempotent, failing cleanly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from stack.core import LocalStack
from stack.endpoints import SPAN
from stack.errors import ComponentError, StackError
from stack.paths import DEFAULT_DATA_ROOT

pytestmark = pytest.mark.stack


def _other_base(stack: LocalStack, n: int) -> int:
    return stack.endpoints.port_base + n * SPAN


def _data_dir(port_base: int) -> Path:
    return Path(os.environ.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT)) / f"test-{port_base}"


@pytest.fixture
def spare(stack: LocalStack, request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    """A second, not yet started stack next to the session's; torn down whatever happens."""
    base = _other_base(stack, 1)
    extra = LocalStack(port_base=base, data_dir=_data_dir(base))
    extra.down(purge=True)
    try:
        yield extra
    finally:
        extra.down(purge=True)


def _stack_pids(st: LocalStack) -> list[int]:
    pid = st.supervisor.pid()
    assert pid, "supervisord is not running"
    root = psutil.Process(pid)
    return [pid, *(p.pid for p in root.children(recursive=True))]


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.extended
def test_second_stack_side_by_side_then_down_leaves_no_pid(stack: LocalStack, spare: LocalStack) -> None:
    status = spare.up()
    assert status.healthy, status.as_dict()
    assert stack.status().healthy, "the session stack suffered from the second one starting"
    pids = _stack_pids(spare)
    assert len(pids) >= 6  # supervisord + 5 components (+ postgres' own children)

    stopped = spare.down()
    assert set(pids) <= set(stopped)
    assert _alive(pids) == [], "processes of the stack survived `down`"
    assert not spare.is_running()
    assert stack.status().healthy, "stopping the second stack disturbed the first"


def test_up_on_a_running_stack_changes_nothing(stack: LocalStack) -> None:
    before = {c.name: c.pid for c in stack.status().components}
    again = LocalStack(port_base=stack.endpoints.port_base, data_dir=stack.data_dir).up()
    assert again.healthy
    assert {c.name: c.pid for c in again.components} == before


def test_taken_port_fails_naming_it_and_leaves_nothing(stack: LocalStack) -> None:
    base = _other_base(stack, 2)
    target = LocalStack(port_base=base, data_dir=_data_dir(base))
    target.down(purge=True)
    port = target.endpoints.port("clickhouse_tcp")
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        with pytest.raises(StackError, match=rf"port {port} \(clickhouse: clickhouse_tcp") as err:
            target.up()
        assert f"pid {os.getpid()}" in str(err.value), "the message should name who holds the port"
        assert not target.is_running()
        assert not (target.data_dir / "supervisor.sock").exists()
    finally:
        holder.close()
        target.down(purge=True)


def test_component_that_crashes_fails_fast_with_its_log_and_leaves_nothing(
        stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "clickhouse-server"
    fake.write_text("#!/bin/sh\necho 'boom: cannot open /nonexistent/config.xml' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("RESILIENCE_CLICKHOUSE_SERVER", str(fake))
    base = _other_base(stack, 3)
    target = LocalStack(port_base=base, data_dir=_data_dir(base))
    target.down(purge=True)
    seen: list[int] = []

    def progress(component: str, phase: str, detail: str) -> None:
        if phase == "probing" and not seen and target.supervisor.pid():
            seen.extend(_stack_pids(target))

    try:
        with pytest.raises(ComponentError) as err:
            target.up(progress)
        assert err.value.component == "clickhouse", err.value.message
        assert err.value.log_file == target.ctx.log_dir / "clickhouse.log"
        assert "boom: cannot open" in (err.value.log_tail or "")
        # Failing fast means the crash-loop detection fired, not the component's start-up timeout.
        assert "exited 3 times while starting" in err.value.message, err.value.message
        assert seen, "never saw the stack's processes"
        assert _alive(seen) == [], "a failed start-up left processes running"
    finally:
        target.down(purge=True)


def test_status_reports_a_stopped_component_and_exits_1(stack: LocalStack) -> None:
    rpc = stack.supervisor.rpc
    rpc.stopProcess("infra:prometheus", True)
    try:
        status = stack.status()
        assert not status.healthy
        prom = next(c for c in status.components if c.name == "prometheus")
        assert (prom.state, prom.healthy) == ("STOPPED", False)
        cli = _cli("status", "--port-base", str(stack.endpoints.port_base), "--data-dir", str(stack.data_dir))
        assert cli.returncode == 1
        assert "FAIL" in cli.stdout and "prometheus" in cli.stdout
    finally:
        stack.supervisor.rpc.startProcess("infra:prometheus", True)
    deadline = time.monotonic() + 30
    while not stack.status().healthy:
        assert time.monotonic() < deadline, "prometheus did not come back"
        time.sleep(0.5)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "resilience.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_cli_status_json_of_the_running_stack(stack: LocalStack) -> None:
    cli = _cli("status", "--json", "--port-base", str(stack.endpoints.port_base), "--data-dir", str(stack.data_dir))
    assert cli.returncode == 0, cli.stderr
    data = json.loads(cli.stdout)
    assert data["healthy"] is True
    assert {c["name"] for c in data["components"]} >= {"kafka", "postgres", "clickhouse", "prometheus", "toxiproxy"}
    assert all(isinstance(c["pid"], int) for c in data["components"])


def test_cli_status_of_a_stack_that_is_not_running_exits_1(tmp_path: Path) -> None:
    cli = _cli("status", "--port-base", "30000", "--data-dir", str(tmp_path / "none"))
    assert cli.returncode == 1
    assert "not running" in cli.stdout


def test_cli_up_with_a_missing_tool_exits_3_naming_it(tmp_path: Path) -> None:
    cli = _cli("up", "--port-base", "30040", "--data-dir", str(tmp_path / "s"),
               env={"RESILIENCE_TOXIPROXY": "/nonexistent/toxiproxy-server"})
    assert cli.returncode == 3, cli.stderr
    assert "toxiproxy not at /nonexistent/toxiproxy-server" in cli.stderr
    assert "install.sh" in cli.stderr


def test_cli_bad_port_base_is_a_usage_error() -> None:
    cli = _cli("up", "--port-base", "80")
    assert cli.returncode == 2
    assert "--port-base" in cli.stderr
