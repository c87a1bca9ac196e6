"""Prometheus access for the probes: one client factory, instant and range queries.

Every call has a timeout and retries (the client library's default timeout is
none). No data is an error, never a zero: :class:`ProbeError` says which query
at which URL came back empty or failed.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chaoslib.exceptions import ActivityFailed
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests.exceptions import RequestException
from urllib3.util.retry import Retry

from clients.http_auth import HttpAuth

logger = logging.getLogger(__name__)

__all__ = ["ProbeError", "Recorder", "Series", "auth_headers", "client", "escape_label", "instant", "range_query",
           "recording", "replaying", "use_auth"]

MAX_POINTS = 11000  # Prometheus refuses range queries of more than 11,000 points per series


class ProbeError(ActivityFailed):
    """Nothing could be measured: the source is unreachable, or the query returned no data."""


class Recorder:
    """Every query made while :func:`recording` is active, with its answer (or its error).

    A run saves :attr:`calls` in its directory; :func:`replaying` serves them back so the
    verdicts can be computed again offline, with no Prometheus running.
    """

    def __init__(self, calls: list[dict[str, Any]] | None = None) -> None:
        self.calls: list[dict[str, Any]] = calls or []
        self._index = {_key(c): c for c in self.calls}

    def add(self, key: dict[str, Any], result: Any = None, error: str | None = None) -> None:
        call = {**key, "result": result, "error": error}
        self.calls.append(call)
        self._index[_key(key)] = call

    def lookup(self, key: dict[str, Any]) -> dict[str, Any]:
        """The recorded answer of ``key``; a range query that was not asked exactly is served from a
        recorded range of the same query and step that covers it (re-judging a run with another
        observation window, e.g. up to its first rollback, needs no new recording)."""
        found = self._index.get(_key(key))
        if found is not None:
            return found
        if key.get("kind") == "range":
            for call in self.calls:
                if (call.get("kind") == "range" and call.get("query") == key["query"] and not call.get("error")
                        and call.get("step") == key.get("step") and call["start"] <= key["start"]
                        and call["end"] >= key["end"]):
                    return {**call, "result": _slice(call["result"], key["start"], key["end"])}
        raise ProbeError(f"no recorded answer for {key['kind']} query {key['query']!r}: the recording "
                         "was made by a different version of the evaluation")


def _slice(result: Any, start: float, end: float) -> list[dict[str, Any]]:
    """A recorded range answer cut to the samples within [start, end] (series left empty are dropped)."""
    out = []
    for series in result or []:
        values = [v for v in series.get("values", []) if start <= float(v[0]) <= end]
        if values:
            out.append({**series, "values": values})
    return out


def _key(call: dict[str, Any]) -> str:
    return json.dumps({k: call.get(k) for k in ("kind", "query", "time", "start", "end", "step")},
                      sort_keys=True)


_recorder: ContextVar[Recorder | None] = ContextVar("prom_recorder", default=None)
_replay: ContextVar[Recorder | None] = ContextVar("prom_replay", default=None)


@contextmanager
def recording() -> Iterator[Recorder]:
    """Record every query made in this context (and its threads' copies of the context)."""
    rec = Recorder()
    token = _recorder.set(rec)
    try:
        yield rec
    finally:
        _recorder.reset(token)


@contextmanager
def replaying(calls: list[dict[str, Any]]) -> Iterator[Recorder]:
    """Answer queries from a recording instead of Prometheus."""
    rec = Recorder(calls)
    token = _replay.set(rec)
    try:
        yield rec
    finally:
        _replay.reset(token)


def _call(key: dict[str, Any], fetch: Any) -> Any:
    """Run ``fetch()`` — or answer from the replay — and record the outcome."""
    replay = _replay.get()
    if replay is not None:
        call = replay.lookup(key)
        if call["error"]:
            raise ProbeError(call["error"])
        return call["result"]
    rec = _recorder.get()
    try:
        result = fetch()
    except ProbeError as exc:
        if rec is not None:
            rec.add(key, error=str(exc))
        raise
    if rec is not None:
        rec.add(key, result=result)
    return result


_auth_headers: dict[str, dict[str, str]] = {}


def use_auth(url: str, auth: HttpAuth) -> None:
    """Send ``auth`` (a bearer token or basic auth, :mod:`clients.http_auth`) with every request to the
    Prometheus at ``url`` from now on (the settings model's ``prometheus_token`` etc.; see
    :func:`probes.endpoints.ProbeEndpoints.from_configuration` and :func:`resilience.plan.plan`)."""
    headers = auth.headers()
    if headers:
        _auth_headers[url.rstrip("/")] = headers
    else:
        _auth_headers.pop(url.rstrip("/"), None)


def auth_headers(url: str) -> dict[str, str]:
    """The headers :func:`use_auth` registered for ``url`` (``{}`` without)."""
    return dict(_auth_headers.get(url.rstrip("/"), {}))


def client(url: str, timeout_s: float = 5.0, retries: int = 2) -> PrometheusConnect:
    """A client that retries connection errors and 5xx, times out every request, and sends the
    credentials registered for ``url`` (:func:`use_auth`)."""
    retry = Retry(total=retries, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504),
                  allowed_methods=("GET", "POST"))
    return PrometheusConnect(url=url, headers=auth_headers(url) or None, disable_ssl=True, retry=retry,
                             timeout=math.ceil(timeout_s))


def escape_label(value: str) -> str:
    """Escape a label value for a PromQL string literal (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def instant(url: str, query: str, at: float | None = None, timeout_s: float = 5.0) -> float:
    """Value of a query that must return exactly one sample (aggregate it with ``sum`` etc.).

    Raises:
        ProbeError: Prometheus unreachable or failing, no sample, several samples, or NaN.
    """
    params = {"time": f"{at:.3f}"} if at is not None else None
    logger.debug("instant query at %s: %s", url, query)

    def fetch() -> Any:
        try:
            return client(url, timeout_s).custom_query(query, params=params)
        except (RequestException, PrometheusApiClientException) as exc:
            raise ProbeError(f"Prometheus at {url}: query failed: {exc} (query: {query})") from None

    result = _call({"kind": "instant", "url": url, "query": query, "time": params and params["time"]}, fetch)
    if not result:
        raise ProbeError(f"Prometheus at {url}: no data for {query}")
    if len(result) > 1:
        raise ProbeError(f"Prometheus at {url}: {len(result)} series for {query}; aggregate it to one")
    value = float(result[0]["value"][1])
    if math.isnan(value):
        raise ProbeError(f"Prometheus at {url}: NaN for {query} (no events in the window?)")
    return value


@dataclass(frozen=True)
class Series:
    """One range-query series: ``points`` [(epoch seconds, value)], NaN samples dropped."""

    labels: dict[str, str]
    points: list[tuple[float, float]]

    def max_gap(self, start: float, end: float) -> float:
        """Longest stretch of [start, end] without a sample (a scrape gap, or missing data)."""
        times = [start] + [t for t, _ in self.points] + [end]
        return max(b - a for a, b in itertools.pairwise(times))


def range_query(url: str, query: str, start: float, end: float, step_s: float = 1.0,
                timeout_s: float = 10.0) -> list[Series]:
    """Range query over [start, end] (epoch seconds); step widened to stay under 11,000 points.

    Raises:
        ProbeError: Prometheus unreachable or failing, or no series at all.
    """
    if end <= start:
        raise ValueError(f"range query needs end > start (got {start} .. {end})")
    step = max(step_s, (end - start) / MAX_POINTS)  # Prometheus refuses more than 11,000 points
    logger.debug("range query at %s [%s, %s] step %s: %s", url, start, end, step, query)

    def fetch() -> Any:
        try:
            return client(url, timeout_s).custom_query_range(
                query, start_time=datetime.fromtimestamp(start, UTC), end_time=datetime.fromtimestamp(end, UTC),
                step=f"{step:g}")  # float seconds, as the HTTP API accepts
        except (RequestException, PrometheusApiClientException) as exc:
            raise ProbeError(f"Prometheus at {url}: range query failed: {exc} (query: {query})") from None

    key = {"kind": "range", "url": url, "query": query, "start": round(start, 3), "end": round(end, 3), "step": step}
    result = _call(key, fetch)
    if not result:
        raise ProbeError(f"Prometheus at {url}: no data between {_iso(start)} and {_iso(end)} for {query}")
    out = []
    for r in result:
        pts = [(float(t), float(v)) for t, v in r["values"]]
        out.append(Series(labels=r.get("metric", {}), points=[(t, v) for t, v in pts if not math.isnan(v)]))
    return out


def wait_ready(url: str, timeout_s: float = 30.0) -> None:
    """Block until Prometheus answers ``/-/ready``; :class:`ProbeError` after ``timeout_s``."""
    import requests

    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/-/ready", timeout=2, headers=auth_headers(url)).status_code == 200:
                return
        except RequestException as exc:
            last = str(exc)
        time.sleep(0.5)
    raise ProbeError(f"Prometheus at {url} not ready within {timeout_s:.0f} s: {last}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%SZ")
