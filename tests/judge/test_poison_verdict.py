"""``poison_dead_lettered``: every poison record the broker acknowledged is in the dead-letter topic, by key.

Judged here offline, from a run directory as a real run leaves it (``load/poison.jsonl`` written by the
fault, ``recorded/poison.json`` by the live judge); the live path is proven by ``resilience run
poison_events`` (docs/scenarios.md). A record missing from the topic fails the run and is named; a run whose
fault sent nothing cannot pass.
"""

from __future__ import annotations

import json
from pathlib import Path

from faults.poison_records import POISON_FILE
from resilience.judge import POISON_RECORDING, _poison
from resilience.rundir import RunDirectory
from resilience.secrets import Redactor
from target.contract import DataContract

RUN = {"endpoints": {"kafka_bootstrap": "127.0.0.1:1"}}


def _run_dir(tmp_path: Path, acked: list[str], dead_lettered: list[str] | None) -> RunDirectory:
    rd = RunDirectory(tmp_path, "run-1", Redactor([]))
    if acked:
        rd.load_dir.mkdir(parents=True)
        (rd.load_dir / POISON_FILE).write_text("".join(
            json.dumps({"key": k, "kind": "not_json", "topic": "sql-audit-events", "partition": 0, "offset": n,
                        "acked_at_ms": 1}) + "\n" for n, k in enumerate(acked)))
    if dead_lettered is not None:
        (tmp_path / "recorded").mkdir()
        (tmp_path / POISON_RECORDING).write_text(json.dumps({"dead_lettered": dead_lettered}))
    return rd


def test_every_record_dead_lettered_passes(tmp_path: Path) -> None:
    m = _poison(_run_dir(tmp_path, ["poison-r-0", "poison-r-1"], ["poison-r-0", "poison-r-1"]), RUN,
                DataContract(), live=False, kafka_auth=None)
    assert m.value == 0 and not m.reason


def test_a_record_missing_from_the_dead_letter_topic_fails_and_is_named(tmp_path: Path) -> None:
    m = _poison(_run_dir(tmp_path, ["poison-r-0", "poison-r-1", "poison-r-2"], ["poison-r-0", "poison-r-2"]), RUN,
                DataContract(), live=False, kafka_auth=None)
    assert m.value == 1
    assert "1 of 3 poison records are not in the dead-letter topic: poison-r-1 (not_json, sql-audit-events/0@1)" \
        in m.reason
    assert m.details["missing"] == ["poison-r-1"]


def test_a_fault_that_sent_nothing_is_inconclusive(tmp_path: Path) -> None:
    m = _poison(_run_dir(tmp_path, [], []), RUN, DataContract(), live=False, kafka_auth=None)
    assert m.value is None and "did not take effect" in m.reason


def test_no_recording_of_the_topic_is_inconclusive(tmp_path: Path) -> None:
    m = _poison(_run_dir(tmp_path, ["poison-r-0"], None), RUN, DataContract(), live=False, kafka_auth=None)
    assert m.value is None and POISON_RECORDING in m.reason
