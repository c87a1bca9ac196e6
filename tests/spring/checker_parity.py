"""The checker-parity cases shared by the two services: events, configurations and statements, with the
verdicts of the Python reference engine.

The Java build's ``CheckerParityTest`` replays ``services/spring/src/test/resources/checker-parity.json``
through the Spring service's engine and must get the same violations (event, checker, severity, message)
and the same normalised statements; ``test_checker_parity.py`` checks that the committed file is what the
Python engine says today. After changing a rule, regenerate it::

    .venv/bin/python -m tests.spring.checker_parity
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

from sqlaudit.checkers import CheckerEngine, normalize_sql
from sqlaudit.config import CheckersConfig
from sqlaudit.events import SqlEvent, SqlType

__all__ = ["PARITY_FILE", "build_cases"]

PARITY_FILE = Path(__file__).resolve().parents[2] / "services" / "spring" / "src" / "test" / "resources" / \
    "checker-parity.json"
SEED = 20251223
PARTITIONS = 6

STATEMENTS = [
    "SELECT * FROM t1 WHERE id IN (1, 2, 3) AND name = 'O''Brien';",
    "select *   from t1 where id in (7) and name = 'x'",
    "SELECT v2_x, -1.5, +3, 1e3, 2E-7 FROM t WHERE a.b = 4 AND $1 = 5",
    "UPDATE stock SET n = n - 1 WHERE sku = 'A-12' ;;",
    "DELETE FROM carts WHERE age > 90\n\tAND  x IN ( 1 , 2 )",
    "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    "SELECT x.5, 12abc, abc12, 1.2.3, 0x1F FROM t",
    "SELECT '' , 'it''s', '''' FROM dual",
    "SELECT ٣ + 4, ５ FROM t",  # Unicode digits: Python's \\d matches them
    "SELECT\u00a0*\u2003FROM\u3000t",  # Unicode spaces
    "SELECT ΑΣ, Straße, İstanbul, ǅ FROM Ünïcode",
    "SELECT café1, e\u0301t\u00e9 FROM t WHERE n = 1",  # combining mark next to a digit
    "CREATE TABLE x (id int)",
    "   ;  ",
    "SELECT (?, ?), ( ? ), (1,a) FROM t",
]


def _event(rnd: random.Random, app: str, produced_at: int) -> SqlEvent:
    sql_type = rnd.choice(list(SqlType))
    template = rnd.choice(STATEMENTS[:8])
    sql = template.replace("7", str(rnd.randint(0, 9))) if rnd.random() < 0.5 else template
    return SqlEvent(event_id=uuid.UUID(int=rnd.getrandbits(128)), app=app, database="shop", sql=sql,
                    sql_type=sql_type,
                    duration_ms=rnd.choice([0, 999, 1000, 1001, 4999, 5000, 5001, 60000, 2, 10]),
                    rows_affected=rnd.choice([0, 1, 1000, 1001, 9999, 10000, 10001, 10**12]),
                    error_code=rnd.choice([None, None, None, "", "40001", "23505"]),
                    produced_at=produced_at)


def _events(rnd: random.Random, n: int) -> list[tuple[int, SqlEvent]]:
    """``n`` events of 9 apps over ~40 s of windows, mostly in order, some out of order, some late."""
    apps = [f"app-{i}" for i in range(9)]
    t = 1_795_763_580_000
    out = []
    for _ in range(n):
        app = rnd.choice(apps[:3]) if rnd.random() < 0.6 else rnd.choice(apps)  # a few busy apps
        t += rnd.choice([0, 1, 3, 10, 40])
        at = t
        r = rnd.random()
        if r < 0.05:
            at = t - rnd.randint(1, 9000)  # out of order, inside the retention
        elif r < 0.07:
            at = t - 200_000  # late: its window is closed
        out.append((apps.index(app) % PARTITIONS, _event(rnd, app, at)))
    return out


CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "tight": {"slow_query": {"threshold_ms": 10, "critical_ms": 1000},
              "actual_impact": {"threshold_rows": 0, "critical_rows": 1000},
              "error_rate": {"window_ms": 3000, "min_events": 5, "threshold": 0.2, "critical": 0.4},
              "frequency": {"window_ms": 2000, "threshold": 3, "critical": 12},
              "state_retention_ms": 5000},
    "some disabled": {"slow_query": {"enabled": False}, "frequency": {"enabled": False},
                      "error_rate": {"min_events": 1, "threshold": 0.0, "critical": 1.0}},
}


def build_cases(seed: int = SEED, n: int = 2000) -> dict[str, Any]:
    """The whole parity document: configs, events, the verdicts for each config, normalisations.

    Compact rows: an event is ``[partition, event_id, app, sql, sql_type, duration_ms, rows_affected,
    error_code, produced_at]``, a violation ``[event index, checker, severity, message]``.
    """
    rnd = random.Random(seed)
    events = _events(rnd, n)
    index = {e.event_id: i for i, (_, e) in enumerate(events)}
    verdicts: dict[str, list[list[object]]] = {}
    for name, cfg in CONFIGS.items():
        engine = CheckerEngine(CheckersConfig.model_validate(cfg))
        # Several batches, as the service sees them; state carries over between batches.
        violations = []
        for i in range(0, len(events), 500):
            violations += engine.evaluate(events[i:i + 500])[0]
        verdicts[name] = [[index[v.event_id], v.checker, v.severity.value, v.message] for v in violations]
    return {
        "seed": seed,
        "configs": CONFIGS,
        "events": [[p, str(e.event_id), e.app, e.sql, e.sql_type.value, e.duration_ms, e.rows_affected, e.error_code,
                    e.produced_at] for p, e in events],
        "violations": verdicts,
        "normalized": {s: normalize_sql(s) for s in STATEMENTS},
    }


def render(cases: dict[str, Any]) -> str:
    """One line per event and per violation: readable diffs when a rule changes."""
    lines = ["{", f'"seed": {cases["seed"]},', f'"configs": {json.dumps(cases["configs"])},', '"events": [']
    lines += [json.dumps(row, ensure_ascii=False) + "," for row in cases["events"][:-1]]
    lines += [json.dumps(cases["events"][-1], ensure_ascii=False), "],", '"violations": {']
    for i, (name, rows) in enumerate(cases["violations"].items()):
        lines.append(f"{json.dumps(name)}: [")
        lines += [json.dumps(r, ensure_ascii=False) + ("," if j < len(rows) - 1 else "") for j, r in enumerate(rows)]
        lines.append("]" + ("," if i < len(cases["violations"]) - 1 else ""))
    lines += ["},", f'"normalized": {json.dumps(cases["normalized"], ensure_ascii=False, indent=1)}', "}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    PARITY_FILE.write_text(render(build_cases()), encoding="utf-8")
    print(f"wrote {PARITY_FILE}")
