"""Recorded Prometheus answers replay exactly, errors included (for offline re-evaluation)."""

from __future__ import annotations

from typing import Any

import pytest

from probes import prom


class FakeClient:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def custom_query(self, query: str, params: Any = None) -> Any:
        if self.answer == "boom":
            from requests.exceptions import ConnectionError as RequestsConnectionError

            raise RequestsConnectionError("connection refused")
        return self.answer

    def custom_query_range(self, query: str, **kw: Any) -> Any:
        return [{"metric": {}, "values": [[100, "1"], [101, "NaN"], [102, "3"]]}]


def test_record_then_replay_without_prometheus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prom, "client", lambda url, timeout_s=5.0: FakeClient([{"value": [1, "0.25"]}]))
    with prom.recording() as rec:
        v = prom.instant("http://p", "q1", at=123.0)
        s = prom.range_query("http://p", "q2", 100, 102)
    monkeypatch.setattr(prom, "client", lambda url, timeout_s=5.0: FakeClient("boom"))
    with pytest.raises(prom.ProbeError, match="connection refused"), prom.recording() as rec2:
        prom.instant("http://p", "q3")
    calls = rec.calls + rec2.calls
    assert [c["kind"] for c in calls] == ["instant", "range", "instant"]

    def no_network(url: str, timeout_s: float = 5.0) -> Any:
        raise AssertionError("replay must not reach Prometheus")

    monkeypatch.setattr(prom, "client", no_network)
    with prom.replaying(calls):
        assert prom.instant("http://p", "q1", at=123.0) == v == 0.25
        assert prom.range_query("http://p", "q2", 100, 102)[0].points == s[0].points == [(100.0, 1.0), (102.0, 3.0)]
        with pytest.raises(prom.ProbeError, match="connection refused"):
            prom.instant("http://p", "q3")
        with pytest.raises(prom.ProbeError, match="no recorded answer"):
            prom.instant("http://p", "never asked")


def test_escape_label() -> None:
    assert prom.escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
