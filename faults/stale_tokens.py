"""Stale tokens: API clients that still sign with a key the service no longer holds.

The operations guide's read API is JWT-protected (HS256), and its High4xxErrorRate alert is there for
clients the API refuses. The commonest way to get many of them at once is a key rotation some clients
missed: their tokens are well formed, carry the claims a good token carries, and are signed with the
wrong key. Shared by both targets' backends of :mod:`faults.stale_api_key` (plain HTTP to the target's
read API, wherever it runs). :func:`send_stale_tokens` asks the API ``GET /api/v1/violations`` with such
a token at ``rate`` per second for ``duration`` seconds, round robin over its replicas, and writes every
answer (replica, status, time) to ``stale_tokens.jsonl`` in the run's load directory: what the judge then
counts (``stale_tokens_served``: every answered request must be a 401; a 2xx served data to a client
without the key, a 5xx broke on it).

Blocking and bounded (``duration`` seconds plus one request's timeout): nothing is left running when it
returns or is interrupted, so there is nothing to roll back.
"""

from __future__ import annotations

import json
import secrets as _secrets
import time
from pathlib import Path
from typing import Any

import jwt
import requests
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from stack.paths import REPO_ROOT
from target.settings import TargetSettings, resolve

__all__ = ["PATH", "STALE_FILE", "account_counts", "read_answers", "send_stale_tokens", "stale_token",
           "stop_stale_tokens", "tally"]

STALE_FILE = "stale_tokens.jsonl"
PATH = "/api/v1/violations?limit=20"
TIMEOUT_S = 5.0


def stale_token(key: str, now: float | None = None) -> str:
    """A token a client of the API would send (the load's claims, valid for five minutes), signed with ``key``."""
    t = int(time.time() if now is None else now)
    return jwt.encode({"sub": "loadtests", "iat": t, "exp": t + 300}, key, algorithm="HS256")


def send(urls: list[str], rate: float, duration: float, out: Path) -> dict[str, Any]:
    """Ask ``urls`` (round robin) with a token signed by a key made here at ``rate``/s for ``duration`` s; every
    answer goes to ``out`` (one JSON line each: ``n``, ``url``, ``status`` (0: no answer), ``error``, ``at_ms``).
    Returns the counts: sent, answered, by status, served (2xx/3xx), server errors (5xx), unanswered."""
    out.parent.mkdir(parents=True, exist_ok=True)
    token = stale_token(_secrets.token_urlsafe(48))  # a key nobody else holds: the one the clients kept
    by_status: dict[str, int] = {}
    sent = 0
    start = time.monotonic()
    with requests.Session() as session, out.open("w") as fh:
        while True:
            due = start + sent / rate
            if due >= start + duration or time.monotonic() >= start + duration:  # bounded even if replicas hang
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            url = urls[sent % len(urls)]
            status, error = 0, ""
            try:
                status = session.get(url + PATH, headers={"Authorization": f"Bearer {token}"},
                                     timeout=TIMEOUT_S).status_code
            except requests.RequestException as exc:  # a replica restarting: counted, not served
                error = f"{type(exc).__name__}: {exc}"[:200]
            fh.write(json.dumps({"n": sent, "url": url, "status": status, "error": error,
                                 "at_ms": int(time.time() * 1000)}) + "\n")
            by_status[str(status)] = by_status.get(str(status), 0) + 1
            sent += 1
    return {"sent": sent, "answered": sent - by_status.get("0", 0), "by_status": dict(sorted(by_status.items())),
            **account_counts(by_status), "seconds": round(time.monotonic() - start, 2), "file": str(out)}


def tally(answers: list[dict[str, Any]]) -> dict[str, int]:
    """Answers per status (``"0"``: no answer), as written to :data:`STALE_FILE`."""
    by_status: dict[str, int] = {}
    for a in answers:
        by_status[str(a.get("status", 0))] = by_status.get(str(a.get("status", 0)), 0) + 1
    return dict(sorted(by_status.items()))


def account_counts(by_status: dict[str, int]) -> dict[str, int]:
    """Served (2xx/3xx: data given to a client without the key), server errors (5xx) and unanswered (0)."""
    served = sum(n for s, n in by_status.items() if 200 <= int(s) < 400)
    errors = sum(n for s, n in by_status.items() if int(s) >= 500)
    return {"served": served, "server_errors": errors, "unanswered": by_status.get("0", 0)}


def read_answers(path: Path) -> list[dict[str, Any]]:
    """The answers of a run's stale-token requests (``[]`` when the file is absent)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _api_urls(settings: TargetSettings) -> list[str]:
    urls = settings.read_api_urls("send_stale_tokens")
    if not urls:
        raise ActivityFailed(f"send_stale_tokens: the {settings.service} service has no read API to ask (set "
                             "api_urls, RESILIENCE_API_URLS, for a service that has one; on the local stack run "
                             "the spring service: --service spring)")
    return [u.rstrip("/") for u in urls]


def send_stale_tokens(rate: float = 10.0, duration: float = 90.0, configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """The backend of :func:`faults.stale_api_key.send_stale_tokens`, the same on every target (HTTP)."""
    settings = resolve(configuration)
    urls = _api_urls(settings)
    if settings.dry_run:  # the engine plans every fault first, so a real call has already passed this check
        return {"would": f"ask {PATH} of {', '.join(urls)} with tokens signed by a key the service does not "
                         f"hold, {rate:g}/s for {duration:g} s"}
    load_dir = settings.load_dir or REPO_ROOT / "reports" / "adhoc" / settings.run_id / "load"
    out = send(urls, rate, duration, load_dir / STALE_FILE)
    if not out["answered"]:
        raise ActivityFailed(f"send_stale_tokens: none of {out['sent']} requests was answered by "
                             f"{', '.join(urls)}")
    return out


def stop_stale_tokens(configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Nothing to undo: the requests were answered, and no client is left sending."""
    return {"changed": "nothing to undo: the stale-token client stopped when its duration ended"}
