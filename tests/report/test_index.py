"""The gate index page: overall badge, one row per scenario, a working link to each report."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from resilience.report import ScenarioResult, render_index, render_report
from tests.report.test_report_html import assert_self_contained

RunFactory = Callable[..., Path]


def _gate(run_factory: RunFactory, outcomes: list[str]) -> list[ScenarioResult]:
    results = []
    for i, outcome in enumerate(outcomes):
        run_dir = run_factory(f"20261127T0715{i:02d}Z-s{i}", outcome=outcome, scenario=f"scenario_{i}",
                              title=f"<b>title {i}</b>")
        render_report(run_dir)
        results.append(ScenarioResult.from_run_dir(run_dir))
    return results


def test_index_links_every_report(run_factory: RunFactory, tmp_path: Path) -> None:
    results = _gate(run_factory, ["pass", "fail", "inconclusive"])
    path = render_index(results, tmp_path / "gate" / "index.html")
    html = path.read_text()
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert len(hrefs) == 3
    for href, r in zip(hrefs, results, strict=True):
        assert (path.parent / unquote(href)).resolve() == r.report_path.resolve()
        assert r.scenario in html
    assert 'class="badge fail"' in html
    assert "&lt;b&gt;title 0&lt;/b&gt;" in html and "<b>title" not in html
    assert "pdb_min_available" in html and "7 s" in html
    assert_self_contained(html)


def test_index_all_pass_is_pass(run_factory: RunFactory, tmp_path: Path) -> None:
    html = render_index(_gate(run_factory, ["pass", "pass"]), tmp_path / "index.html").read_text()
    assert 'class="badge pass"' in html


def test_index_inconclusive_is_not_pass(run_factory: RunFactory, tmp_path: Path) -> None:
    html = render_index(_gate(run_factory, ["pass", "inconclusive"]), tmp_path / "index.html").read_text()
    assert 'class="badge inconclusive"' in html


def test_empty_gate_is_inconclusive(tmp_path: Path) -> None:
    html = render_index([], tmp_path / "index.html").read_text()
    assert 'class="badge inconclusive"' in html and "No scenario ran" in html


def test_index_without_rendered_report(run_factory: RunFactory, tmp_path: Path) -> None:
    result = ScenarioResult.from_run_dir(run_factory(summary=False))
    html = render_index([result], tmp_path / "index.html").read_text()
    assert "no report" in html and "crashed" in html
