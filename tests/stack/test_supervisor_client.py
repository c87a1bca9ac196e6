"""The one supervisord client (stack.supervisor.Supervisor) without a stack: every call is bounded and its
errors name the socket. A real supervisord is exercised by tests/stack, tests/faults and tests/ha."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import supervisor as sv
from stack.core import LocalStack
from stack.errors import ProcessGone, SupervisorError


@pytest.fixture
def mute_socket(tmp_path: Path) -> Iterator[sv.Supervisor]:
    """A Supervisor whose socket accepts connections and never answers (a wedged supervisord)."""
    supervisor = LocalStack(port_base=20000, data_dir=tmp_path).supervisor
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(supervisor.socket))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield supervisor
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_a_call_to_a_supervisord_that_never_answers_times_out(mute_socket: sv.Supervisor) -> None:
    mute_socket.rpc_timeout = 0.5
    t0 = time.monotonic()
    with pytest.raises(SupervisorError, match=rf"getAllProcessInfo\(\): supervisord unix://{mute_socket.socket}: "
                                              "timed out"):
        mute_socket.process_info()
    assert mute_socket.pid() is None and not mute_socket.is_running()
    assert time.monotonic() - t0 < 5  # two bounded calls, not a hang


def test_no_socket_is_not_running_and_names_the_socket(tmp_path: Path) -> None:
    supervisor = LocalStack(port_base=20000, data_dir=tmp_path).supervisor
    assert supervisor.pid() is None
    with pytest.raises(SupervisorError, match=f"supervisord unix://{tmp_path}/supervisor.sock"):
        supervisor.info("kafka")


@pytest.mark.extended
def test_signalling_a_pid_that_is_gone_says_so() -> None:
    with pytest.raises(ProcessGone, match="pid 4194999 is gone"):
        sv.killpg(4194999, 0)
    assert not sv.alive(4194999) and sv.wait_dead(4194999, 0.1)
