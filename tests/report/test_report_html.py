"""report.html: content, self-containment, escaping, plots and size, on fabricated run directories."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path

from resilience.report import render_report
from resilience.report.html import MAX_LOST_IDS_SHOWN
from tests.report.conftest import series_doc

IMG = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
ATTR_URL = re.compile(r'\b(?:src|href|srcset|action|poster|formaction|data)\s*=\s*["\']?([^"\'\s>]*)', re.I)
MAX_BYTES = 1_500_000

RunFactory = Callable[..., Path]


def _html(run_dir: Path) -> str:
    out = render_report(run_dir)
    assert out == run_dir / "report.html"
    return out.read_text(encoding="utf-8")


def assert_self_contained(html: str) -> None:
    """Nothing the browser would fetch from outside the file but the run directory's own files."""
    assert not re.search(r"https?://", html), "an absolute URL in the report"
    assert not re.search(r"url\s*\(|@import|<script|<link|<iframe|<object|<embed", html, re.I)
    for ref in ATTR_URL.findall(html):
        if ref.startswith("data:image/png;base64,"):
            continue
        assert not re.match(r"^([a-z][a-z0-9+.-]*:|/)", ref, re.I), f"non-relative reference {ref!r}"


def test_pass_report_has_badge_verdicts_numbers_plots(run_factory: RunFactory) -> None:
    html = _html(run_factory(outcome="pass"))
    assert 'class="badge pass"' in html and 'data-outcome="pass"' in html
    for slo in ("rto_replicas_ready", "rto_data_flow", "data_loss", "availability"):
        assert f"<code>{slo}</code>" in html
    assert "298.7" in html and "kill-one-replica" in html and "2026-11-27" in html
    assert "7 s" in html and "12 s" in html  # RTOs
    images = IMG.findall(html)
    assert len(images) == 5
    for b64 in images:
        assert base64.b64decode(b64).startswith(b"\x89PNG\r\n\x1a\n")
    assert_self_contained(html)
    assert len(html.encode()) < MAX_BYTES


def test_fail_report_lists_failures_first(run_factory: RunFactory) -> None:
    html = _html(run_factory(outcome="fail", lost_ids=[f"evt-{i}" for i in range(70)]))
    assert 'class="badge fail"' in html
    rows = re.findall(r'<tr class="(pass|fail|inconclusive)"><td><code>([^<]+)</code>', html)
    outcomes = [o for o, _ in rows]
    assert outcomes == sorted(outcomes, key=["fail", "inconclusive", "pass"].index)
    assert rows[0] == ("fail", "pdb_min_available")
    assert "measured 1 replicas, objective &gt;= 2" in html
    assert "evt-0," in html and f"evt-{MAX_LOST_IDS_SHOWN - 1}" in html
    assert f"evt-{MAX_LOST_IDS_SHOWN}" not in html and "evt-69" not in html
    assert f"and {70 - MAX_LOST_IDS_SHOWN} more" in html


def test_inconclusive_report(run_factory: RunFactory) -> None:
    html = _html(run_factory(outcome="inconclusive"))
    assert 'class="badge inconclusive"' in html
    assert "Prometheus returned no data" in html
    assert 'class="badge pass"' not in html


def test_summary_saying_pass_with_a_failed_verdict_is_shown_as_fail(run_factory: RunFactory) -> None:
    run_dir = run_factory(outcome="pass")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["verdicts"][0]["outcome"] = "fail"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    html = _html(run_dir)
    assert 'class="badge fail"' in html and "but its verdicts say fail" in html


def test_crashed_run_without_summary_says_so(run_factory: RunFactory) -> None:
    run_dir = run_factory(summary=False, run_extra={"error": "KafkaError: <broker> down", "ended_at": None})
    html = _html(run_dir)
    assert 'class="badge inconclusive"' in html and "run crashed" in html
    assert "crashed before it was judged" in html
    assert "KafkaError: &lt;broker&gt; down" in html
    assert "ERROR boom: &lt;b&gt;not markup&lt;/b&gt;" in html  # runner.log tail, escaped
    assert len(IMG.findall(html)) == 5  # series.json was written before the crash
    assert_self_contained(html)


def test_truncated_summary_is_a_crash_not_an_exception(run_factory: RunFactory) -> None:
    run_dir = run_factory()
    (run_dir / "summary.json").write_text('{"format": 1, "outcome": "pa')
    html = _html(run_dir)
    assert "summary.json is unreadable" in html and 'class="badge inconclusive"' in html


def test_everything_missing_still_renders(tmp_path: Path) -> None:
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    html = _html(run_dir)
    assert "run.json is missing" in html and "series.json is missing" in html
    assert 'class="badge inconclusive"' in html and not IMG.findall(html)
    assert "journal.json (missing)" in html
    assert_self_contained(html)


def test_missing_series_json_says_so(run_factory: RunFactory) -> None:
    html = _html(run_factory(series=None))
    assert not IMG.findall(html)
    assert "series.json is missing" in html and html.count("No plot:") == 5


def test_missing_single_series_says_why(run_factory: RunFactory) -> None:
    html = _html(run_factory(series=series_doc(drop=("e2e_p95_s", "consumer_lag"))))
    assert len(IMG.findall(html)) == 4  # latency still plots the processing p95
    assert "end-to-end: not recorded (Prometheus: no data for e2e_p95_s)" in html
    assert "lag: not recorded (Prometheus: no data for consumer_lag)" in html


def test_gaps_are_reported(run_factory: RunFactory) -> None:
    html = _html(run_factory(series=series_doc(gaps=[(50, 60), (80, 83)])))
    assert len(IMG.findall(html)) == 5
    assert "processing, end-to-end: 2 gaps in the samples (13 s without data)" in html


def test_fault_not_reverted(run_factory: RunFactory) -> None:
    html = _html(run_factory(fault_end=None))
    assert "not reverted" in html


def test_injected_html_is_escaped(run_factory: RunFactory) -> None:
    evil = '<script>alert("x")</script>'
    verdicts = [{"slo": "<img src=x onerror=alert(1)>", "outcome": "fail", "measured": "<b>1</b>",
                 "objective": "<i>2</i>", "unit": "</td>", "reason": evil}]
    series = series_doc()
    series["thresholds"]["consumer_lag"] = [{"label": "$\\frac{a}{b}$ <svg onload=alert(1)>", "value": 100}]
    run_dir = run_factory(title=evil, scenario='"><script>alert(2)</script>', verdicts=verdicts, outcome="fail",
                          lost_ids=["<script>alert(3)</script>"], series=series)
    html = _html(run_dir)
    assert "<script" not in html.lower()
    assert "<img src=x" not in html and "<svg" not in html and "<b>1</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert len(IMG.findall(html)) == 5  # a "$" in a label does not break matplotlib
    assert_self_contained(html)


def test_links_to_journal_and_ledger(run_factory: RunFactory) -> None:
    html = _html(run_factory())
    assert 'href="journal.json"' in html and 'href="ledger/"' in html and 'href="runner.log"' in html


def test_long_noisy_run_stays_under_size_budget(run_factory: RunFactory) -> None:
    run_dir = run_factory(series=series_doc(duration=3600, noisy=True), duration=3600,
                          lost_ids=[f"{i:032x}" for i in range(1000)])
    html = _html(run_dir)
    assert len(IMG.findall(html)) == 5
    size = len(html.encode())
    assert size < MAX_BYTES, f"report is {size} bytes"
