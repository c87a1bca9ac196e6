"""The checker-parity file the Java build replays is what the Python reference engine decides today.

``services/spring``'s ``CheckerParityTest`` (run by ``build.sh``) checks the Spring service against this
file; this test keeps the file honest, so a rule changed on the Python side cannot leave the two services
silently apart. Regenerate with ``.venv/bin/python -m tests.spring.checker_parity``.
"""

from __future__ import annotations

from tests.spring.checker_parity import PARITY_FILE, build_cases, render


def test_parity_file_matches_the_python_engine() -> None:
    assert PARITY_FILE.read_text(encoding="utf-8") == render(build_cases()), (
        f"{PARITY_FILE} is stale: regenerate it with `python -m tests.spring.checker_parity` "
        "and rebuild services/spring")
