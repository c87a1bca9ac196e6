"""Render a report in headless Chromium and keep the screenshot as a test artifact.

The screenshot goes to ``reports/test-artifacts/report-screenshot.png`` (git-ignored),
next to the report it shows, for a person to look at. Chromium comes from Debian's
``chromium`` package, which ``deploy/local/install.sh`` (run by ``make test``) installs; without it
the test fails rather than skips: a report nobody can render is a defect.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resilience.report import render_report
from stack.paths import REPO_ROOT
from tests.report.conftest import series_doc

ARTIFACTS = REPO_ROOT / "reports" / "test-artifacts"
FAIL_RED = (207, 34, 46)  # the fail badge, var(--fail) in the stylesheet


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("chromium is not installed: run deploy/local/install.sh (or apt-get install -y chromium)")


def test_report_screenshot(run_factory: Callable[..., Path], tmp_path: Path) -> None:
    browser = _chromium()
    run_dir = run_factory("20261127T071500Z-pod_failure", outcome="fail",
                          lost_ids=[f"01JD{i:022d}" for i in range(12)],
                          series=series_doc(gaps=[(70, 78)]))
    report = render_report(run_dir)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / "report-screenshot.png"
    png.unlink(missing_ok=True)
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,2400",
           f"--screenshot={png}", report.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert png.is_file(), f"no screenshot: chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    shutil.copy(report, ARTIFACTS / "report-screenshot.html")

    assert png.stat().st_size > 50_000
    with Image.open(png) as img:
        assert img.size == (1280, 2400)
        pixels = np.asarray(img.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 100, "the screenshot is (nearly) a single colour"
    # the FAIL badge is drawn near the top: the stylesheet was applied
    top = pixels[:200].astype(int)
    red = np.all(np.abs(top - np.array(FAIL_RED)) <= 6, axis=-1)
    assert red.sum() > 2000, "no fail badge in the top of the screenshot"
    # the plots were drawn: the lag series' blue appears below the header
    blue = np.all(np.abs(pixels[600:].astype(int) - np.array((28, 126, 214))) <= 20, axis=-1)
    assert blue.sum() > 500, "no plotted line in the screenshot"
