"""Fixtures of the fault-library tests: a per-test journal and run, and the stack's baseline.

Every test gets its own journal directory and run id (so cleanup in teardown
touches only what the test did) and, whatever happened, teardown reverts any
open fault and checks the stack is back at its baseline: proxies enabled
without toxics, every program RUNNING (and not SIGSTOPped), PostgreSQL and
ClickHouse answering, and no expiry timer or watchdog of the test left alive.
"""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
import requests
from clickhouse_driver import Client

from faults.cleanup import cleanup
from stack.core import LocalStack

BASELINE_TIMEOUT_S = 150.0


def baseline_problems(stack: LocalStack) -> list[str]:
    """What differs from the baseline right now (empty list: at baseline)."""
    problems: list[str] = []
    try:
        proxies = requests.get(f"{stack.endpoints.toxiproxy_url}/proxies", timeout=(2, 5)).json()
        for name in ("kafka", "postgres", "clickhouse"):
            proxy = proxies.get(name)
            if proxy is None:
                problems.append(f"proxy {name} missing")
            elif not proxy["enabled"] or proxy["toxics"]:
                problems.append(f"proxy {name}: enabled={proxy['enabled']} toxics={proxy['toxics']}")
    except (requests.RequestException, ValueError) as exc:
        problems.append(f"toxiproxy: {exc}")
    try:
        for name, info in stack.supervisor.process_info().items():
            if info["statename"] != "RUNNING":
                problems.append(f"{name} {info['statename']}")
                continue
            try:
                status = psutil.Process(info["pid"]).status()
            except psutil.Error as exc:
                problems.append(f"{name} pid {info['pid']}: {exc}")
                continue
            if status in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE):
                problems.append(f"{name} pid {info['pid']} {status}")
    except Exception as exc:
        problems.append(f"supervisord: {exc}")
    try:
        with psycopg.connect(**stack.ctx.postgres_kwargs(), connect_timeout=3) as conn:  # type: ignore[arg-type]
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problems.append(f"postgres: {exc}")
    client = Client(host="127.0.0.1", port=stack.endpoints.clickhouse_port, connect_timeout=3,
                    send_receive_timeout=5)
    try:
        client.execute("SELECT 1")
    except Exception as exc:
        problems.append(f"clickhouse: {exc}")
    finally:
        client.disconnect()
    return problems


def wait_baseline(stack: LocalStack, timeout: float = BASELINE_TIMEOUT_S) -> float:
    """Wait until the stack is at its baseline; returns seconds waited, fails the test on timeout."""
    t0 = time.monotonic()
    while True:
        problems = baseline_problems(stack)
        if not problems:
            return time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, f"stack not back at baseline after {timeout:.0f} s: {problems}"
        time.sleep(0.5)


def helpers_alive(state_dir: Path) -> list[psutil.Process]:
    """Expiry timers and watchdogs (``faults.cli``) working on ``state_dir`` or its entries."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "faults.cli" in cmd and str(state_dir) in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def wait_no_helpers(state_dir: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while helpers_alive(state_dir):
        if time.monotonic() > deadline:
            alive = [(p.pid, " ".join(p.cmdline())) for p in helpers_alive(state_dir)]
            for proc in helpers_alive(state_dir):  # ours: never leave them behind
                proc.kill()
            raise AssertionError(f"fault helpers still alive after {timeout:.0f} s: {alive}")
        time.sleep(0.2)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "journal"


@pytest.fixture
def config(stack: LocalStack, state_dir: Path) -> Iterator[dict[str, Any]]:
    """Configuration pointing the faults at the session stack, with a private journal and run id.

    Teardown: revert whatever the test left open, then require the baseline and no helper left.
    """
    cfg: dict[str, Any] = {
        "stack_port_base": stack.endpoints.port_base,
        "stack_data_dir": str(stack.data_dir),
        "fault_state_dir": str(state_dir),
        "run_id": f"test-{uuid.uuid4().hex[:8]}",
        "heartbeat_timeout": 5,
    }
    wait_baseline(stack)
    try:
        yield cfg
    finally:
        leftovers = [r for r in cleanup(state_dir) if not r.ok]
        wait_baseline(stack)
        wait_no_helpers(state_dir)
        assert not leftovers, f"cleanup could not revert: {leftovers}"


@pytest.fixture
def reverted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``cleanup``'s undo replaced by a fake that closes the entry and records its run id (no stack touched)."""
    from faults import cleanup as cleanup_mod
    from faults import journal

    done: list[str] = []

    def fake_revert(path: Path, entry: journal.Entry, by: str) -> cleanup_mod.Reverted:
        done.append(entry["run_id"])
        journal.update(path, status="reverted", reverted_by=by)
        return cleanup_mod.Reverted(id=entry["id"], run_id=entry["run_id"], fault=entry["fault"],
                                    parameters=entry["parameters"], ok=True, detail="reverted")

    monkeypatch.setattr(cleanup_mod, "revert_entry", fake_revert)
    return done
