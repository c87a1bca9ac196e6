"""``python -m resilience.report <run_dir>...``: render reports by hand.

Renders ``report.html`` in each run directory and prints its path. With several run
directories, ``--index`` and ``--junit`` also write a gate index page and JUnit XML.
Exits 0 when everything was rendered, 2 when a run directory does not exist.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from resilience.report import ScenarioResult, render_index, render_report, write_junit


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, render the reports, and return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m resilience.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="a run directory")
    parser.add_argument("--index", type=Path, help="also write a gate index page here")
    parser.add_argument("--junit", type=Path, help="also write JUnit XML here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    missing = [d for d in args.run_dirs if not d.is_dir()]
    if missing:
        print("not a run directory: " + ", ".join(map(str, missing)), file=sys.stderr)
        return 2
    results = []
    for run_dir in args.run_dirs:
        print(render_report(run_dir))
        results.append(ScenarioResult.from_run_dir(run_dir))
    if args.index:
        print(render_index(results, args.index))
    if args.junit:
        print(write_junit(results, args.junit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
