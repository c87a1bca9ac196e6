"""``stale_tokens_served``: every request a client signs with a key the service does not hold is refused (401).

The fault's sender (:func:`faults.stale_tokens.send`) asks a stand-in read API here, a local HTTP server that
checks HS256 tokens with its own key as the Spring service does (the real service refusing exactly these
tokens is ``tests/spring/test_spring_actuator_api.py``); the judge then counts the file the sender wrote, as
after a real run. An API that lets a stale token through fails the run and the request is named; one that
breaks on it fails too; a fault that reached no replica cannot pass.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest

from faults.stale_tokens import PATH, STALE_FILE, send, stale_token
from resilience.judge import _stale_tokens
from resilience.rundir import RunDirectory
from resilience.secrets import Redactor

KEY = "the-service-key-" + "k" * 40


def _api(mode: str) -> tuple[HTTPServer, list[str]]:
    """A read API that verifies tokens with KEY (``checks``), lets every token through (``open``), or breaks on
    a token it cannot verify (``breaks``); it records the paths asked."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            if mode == "slow":  # a replica that takes 1 s per answer
                time.sleep(1.0)
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            try:
                jwt.decode(token, KEY, algorithms=["HS256"])
                status = 200
            except jwt.InvalidTokenError:
                status = {"checks": 401, "open": 200, "breaks": 500, "slow": 401}[mode]
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, asked


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    server, asked = _api(request.param)
    yield f"http://127.0.0.1:{server.server_port}", asked
    server.shutdown()


def _judged(tmp_path: Path, urls: list[str]) -> tuple[dict[str, Any], Any]:
    rd = RunDirectory(tmp_path / "run", "run-1", Redactor([]))
    sent = send(urls, rate=40, duration=0.5, out=rd.load_dir / STALE_FILE)
    return sent, _stale_tokens(rd)


@pytest.mark.parametrize("api", ["checks"], indirect=True)
def test_an_api_that_refuses_every_stale_token_passes(tmp_path: Path, api: tuple[str, list[str]]) -> None:
    url, asked = api
    sent, m = _judged(tmp_path, [url])
    assert sent["sent"] == 20 and sent["by_status"] == {"401": 20} and sent["served"] == 0, sent
    assert m.value == 0 and not m.reason and m.details["by_status"] == {"401": 20}
    assert set(asked) == {PATH}
    assert jwt.decode(stale_token(KEY), KEY, algorithms=["HS256"])["sub"] == "loadtests"  # the claims of a good one


@pytest.mark.parametrize("api", ["open"], indirect=True)
def test_an_api_that_serves_a_stale_token_fails_and_names_the_request(tmp_path: Path, api: tuple[str, list[str]]
                                                                      ) -> None:
    url, _ = api
    _, m = _judged(tmp_path, [url])
    assert m.value == 20 and m.details["served"] == 20
    assert m.reason.startswith("20 of 20 answered requests with a stale key were not refused with 401 (20 served, "
                               f"0 5xx): #0 {url} -> 200"), m.reason


@pytest.mark.parametrize("api", ["breaks"], indirect=True)
def test_an_api_that_breaks_on_a_stale_token_fails(tmp_path: Path, api: tuple[str, list[str]]) -> None:
    _, m = _judged(tmp_path, [api[0]])
    assert m.value == 20 and m.details["server_errors"] == 20 and "20 5xx" in m.reason


@pytest.mark.parametrize("api", ["checks"], indirect=True)
def test_a_replica_that_does_not_answer_is_counted_not_judged(tmp_path: Path, api: tuple[str, list[str]]) -> None:
    _, m = _judged(tmp_path, [api[0], "http://127.0.0.1:1"])  # every other request finds nobody
    assert m.value == 0 and m.details["answered"] == 10 and m.details["unanswered"] == 10, m.details


def test_a_fault_that_reached_no_replica_is_inconclusive(tmp_path: Path) -> None:
    sent, m = _judged(tmp_path, ["http://127.0.0.1:1"])
    assert sent["answered"] == 0
    assert m.value is None and "did not take effect" in m.reason
    empty = RunDirectory(tmp_path / "empty", "run-2", Redactor([]))
    assert _stale_tokens(empty).value is None  # no file at all
    assert json.loads((tmp_path / "run" / "load" / STALE_FILE).read_text().splitlines()[0])["status"] == 0


@pytest.mark.parametrize("api", ["slow"], indirect=True)
def test_a_slow_api_does_not_stretch_the_fault_past_its_duration(tmp_path: Path, api: tuple[str, list[str]]) -> None:
    """40 requests/s for 0.5 s to a replica answering in 1 s: the sender stops at its duration (plus the request
    in flight), not after the 20 requests it planned (20 s)."""
    t0 = time.monotonic()
    sent, m = _judged(tmp_path, [api[0]])
    assert time.monotonic() - t0 < 2.5 and sent["sent"] == 1, sent
    assert m.value == 0 and m.details["answered"] == 1
