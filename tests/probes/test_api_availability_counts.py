"""The micrometer profile's api_availability counts the first 5xx of a (uri, status) series born in the window.

Micrometer creates a series at its first request, so ``increase()`` sees no earlier sample and misses that
first count: a live Spring run's single 503 read as 100 % availability. Here a real Prometheus (the one the
stack runs) is given the same shape of data (backfilled with ``promtool tsdb create-blocks-from openmetrics``)
and the measure's query must read below 100 %; with ``increase()`` alone it reads 100 % and this fails.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from probes import prom
from probes.slo import load_catalogue

pytestmark = pytest.mark.skipif(not (shutil.which("promtool") and shutil.which("prometheus")),
                                reason="needs Prometheus and promtool (deploy/local/install.sh)")

SERIES = 'http_server_requests_seconds_count{{job="audit-service",uri="/api/v1/violations",status="{status}"}}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus_with_a_new_503(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    """A Prometheus holding 100 s of API requests (10 per second answered 200) and one 503 whose series is born
    halfway; yields its URL and the end of the window."""
    tmp = tmp_path_factory.mktemp("prom")
    t0 = float(int(time.time()) - 3600)
    lines = ["# TYPE http_server_requests_seconds_count gauge"]
    for i in range(0, 101, 2):
        lines.append(f"{SERIES.format(status='200')} {10 * i} {t0 + i:.0f}")
    for i in range(50, 101, 2):
        lines.append(f"{SERIES.format(status='503')} 1 {t0 + i:.0f}")
    lines.append("# EOF")
    source = tmp / "data.om"
    source.write_text("\n".join(lines) + "\n")
    data = tmp / "tsdb"
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)], check=True,
                   capture_output=True, timeout=60)
    config = tmp / "prometheus.yml"
    config.write_text("global: {}\n")
    port = _free_port()
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        prom.wait_ready(url, timeout_s=60)
        deadline = time.monotonic() + 60
        while not requests.get(f"{url}/api/v1/query", params={"query": "count(http_server_requests_seconds_count)",
                                                              "time": t0 + 100}, timeout=5).json()["data"]["result"]:
            assert time.monotonic() < deadline, "the backfilled block was not loaded"
            time.sleep(0.5)
        yield url, t0 + 100
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_first_503_of_a_new_series_lowers_api_availability(prometheus_with_a_new_503: tuple[str, float]) -> None:
    url, end = prometheus_with_a_new_503
    cat = load_catalogue()
    query = cat.query("api_availability", cat.view("local", service="spring"), window="100s")
    value = prom.instant(url, query, at=end)
    # 1 server error among about 1,000 answers: 100 * (1 - 1/1001), not 100.
    assert 99.85 < value < 99.95, (value, query)
    naive = ('100 * (1 - (sum(increase(http_server_requests_seconds_count{job="audit-service", status=~"5.."}'
             '[100s])) or vector(0)) / clamp_min(sum(increase(http_server_requests_seconds_count'
             '{job="audit-service"}[100s])), 1))')
    assert prom.instant(url, naive, at=end) == 100.0  # what increase() alone reads: the 503 vanishes
