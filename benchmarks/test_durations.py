"""Benchmark: where the README's test command spends its time, from the JUnit file pytest wrote.

    PYTEST_ARGS="--junitxml=/tmp/run.xml" .ci/run
    .venv/bin/python benchmarks/test_durations.py /tmp/run.xml [--top 40] [--under 5]

Prints the wall time per test directory and per file, the ``--top`` slowest tests with the running total
(how much a default set without them would save), and what the tests under ``--under`` seconds take together.
A test's time is its setup, call and teardown: a module's stack is charged to its first test.
"""

from __future__ import annotations

import argparse
import collections
import xml.etree.ElementTree as ET
from pathlib import Path


def cases(path: Path) -> list[tuple[float, str, str]]:
    """``(seconds, module, test name)`` of every test case of the JUnit file."""
    root = ET.parse(path).getroot()
    return [(float(tc.get("time") or 0), tc.get("classname") or "?", tc.get("name") or "?")
            for tc in root.iter("testcase")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("junit", type=Path, help="the JUnit XML file of a pytest run (--junitxml)")
    parser.add_argument("--top", type=int, default=40, help="how many of the slowest tests to list (default 40)")
    parser.add_argument("--under", type=float, default=5.0, help="the 'quick test' bound in seconds (default 5)")
    args = parser.parse_args()
    rows = sorted(cases(args.junit), reverse=True)
    total = sum(t for t, _, _ in rows)
    print(f"{len(rows)} tests, {total / 60:.1f} min")
    by_dir: collections.Counter[str] = collections.Counter()
    by_file: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    for seconds, module, _ in rows:
        by_dir[".".join(module.split(".")[:2])] += seconds
        by_file[module] += seconds
        count[module] += 1
    print("\nper directory")
    for name, seconds in by_dir.most_common():
        print(f"  {seconds / 60:6.1f} min  {name}")
    print("\nper file (the 20 slowest)")
    for name, seconds in by_file.most_common(20):
        print(f"  {seconds:6.0f} s  {count[name]:4d} tests  {name}")
    print(f"\nthe {args.top} slowest tests (running total in minutes)")
    running = 0.0
    for seconds, module, name in rows[:args.top]:
        running += seconds
        print(f"  {seconds:6.0f} s  {running / 60:5.1f}  {module}::{name}")
    quick = [t for t, _, _ in rows if t < args.under]
    print(f"\n{len(quick)} tests under {args.under:g} s: {sum(quick) / 60:.1f} min together")


if __name__ == "__main__":
    main()
