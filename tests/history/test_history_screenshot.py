"""``history.html`` rendered in headless Chromium, its screenshot kept as a test artifact.

Like the report's screenshot test: ``reports/test-artifacts/history-screenshot.png`` (git-ignored)
for a person to look at; without Chromium the test fails rather than skips.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from resilience.history.importer import import_dirs
from resilience.history.store import HistoryStore
from resilience.history.view import write_html
from tests.report.conftest import T0
from tests.report.test_screenshot import ARTIFACTS, _chromium

DAY = 86400.0
BLUE, RED = (28, 126, 214), (207, 34, 46)


def test_history_screenshot(store: HistoryStore, run_writer: Callable[..., Path], tmp_path: Path) -> None:
    browser = _chromium()
    for i in range(14):
        release = "v1.4.0" if i < 9 else "v1.5.0"
        rto = 7.0 + (i % 3) * 0.6 + (5.0 if i >= 9 else 0.0)
        run_writer(f"run{i:02d}", rto=rto, flow=11.0 + (i % 4), started=T0 + i * DAY, release=release,
                   outcome="fail" if i == 12 else "pass")
    import_dirs(store, [tmp_path / "reports"])
    page = write_html(store.runs(), tmp_path / "history.html", None, str(store))
    text = page.read_text()
    assert text.count("data:image/png;base64,") >= 5 and "v1.5.0" in text and "http" not in text.split("<body>")[1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / "history-screenshot.png"
    png.unlink(missing_ok=True)
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1800",
           f"--screenshot={png}", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert png.is_file(), f"no screenshot: chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    shutil.copy(page, ARTIFACTS / "history-screenshot.html")
    with Image.open(png) as img:
        assert img.size == (1280, 1800)
        pixels = np.asarray(img.convert("RGB")).astype(int)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100, "the screenshot is (nearly) a single colour"
    blue = np.all(np.abs(pixels - np.array(BLUE)) <= 12, axis=-1)
    red = np.all(np.abs(pixels - np.array(RED)) <= 12, axis=-1)
    assert blue.sum() > 400, "no passed run plotted"
    assert red.sum() > 200, "no objective line or failed run drawn in red"
