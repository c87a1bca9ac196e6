"""Data-loss and RPO accounting on made-up ledgers and store contents."""

from __future__ import annotations

from probes.dataloss import StoredEvent, account

FAULT = 1_000_000


def stored(produced: int, copies: int = 1, delay: int = 50) -> StoredEvent:
    return StoredEvent(copies=copies, first_stored_at_ms=produced + delay, produced_at_ms=produced)


def test_nothing_lost_is_rpo_zero() -> None:
    acked = {f"e{i}": FAULT - 10_000 + i * 100 for i in range(200)}
    rep = account(acked, {k: stored(v) for k, v in acked.items()}, FAULT)
    assert (rep.lost, rep.rpo_s, rep.stored, rep.acknowledged) == ([], 0.0, 200, 200)


def test_lost_events_are_named_and_the_rpo_spans_them_from_the_earliest_to_the_latest() -> None:
    acked = {"a": FAULT - 7_000, "b": FAULT - 2_000, "c": FAULT + 1_000, "d": FAULT - 9_000}
    rep = account(acked, {"d": stored(acked["d"])}, FAULT)
    assert rep.lost == ["a", "b", "c"]  # ordered by produced_at
    assert rep.lost_before_fault == 2
    assert rep.rpo_s == 8.0  # 7 s before the fault to 1 s after it
    assert rep.earliest_lost_produced_at_ms == FAULT - 7_000


def test_loss_only_after_the_fault_spans_from_the_fault() -> None:
    """Writes acknowledged after the fault began and lost after all (an old leader's) are a recovery point
    too: the span from the fault to the latest of them, never 0."""
    acked = {"a": FAULT + 500, "b": FAULT - 500}
    rep = account(acked, {"b": stored(acked["b"])}, FAULT)
    assert rep.lost == ["a"] and rep.rpo_s == 0.5
    assert account({"a": FAULT}, {}, FAULT).rpo_s == 0.001  # one lost at the fault's very start


def test_duplicates_and_late_are_counted_not_lost() -> None:
    acked = {"a": 1000, "b": 2000, "c": 3000}
    st = {"a": stored(1000, copies=2), "b": stored(2000, delay=5_000), "c": stored(3000)}
    rep = account(acked, st, FAULT, late_after_ms=500)
    assert (rep.lost, rep.duplicated, rep.late) == ([], 1, 1)


def test_stored_events_not_in_the_ledger_are_ignored() -> None:
    rep = account({"a": 1}, {"a": stored(1), "zzz": stored(5)}, FAULT)
    assert (rep.stored, rep.lost) == (1, [])


def test_empty_ledger_reports_zero_acknowledged() -> None:
    rep = account({}, {}, FAULT)
    assert rep.acknowledged == 0  # the evaluator turns this into "inconclusive", never "pass"


class _Client:
    """Answers the engine lookup with ``engine``; records what it was asked."""

    def __init__(self, engine: str | None) -> None:
        self.engine, self.asked = engine, []  # type: ignore[var-annotated]

    def execute(self, query: str, params: object = None, settings: dict[str, int] | None = None) -> list[tuple[str]]:
        self.asked.append((query, params, settings))
        return [(self.engine,)] if "system.tables" in query and self.engine else []


def test_a_replicated_events_table_is_synced_before_it_is_counted_and_no_other() -> None:
    from probes.dataloss import sync_replica
    from target.contract import DataContract

    contract = DataContract(clickhouse_database="audit", clickhouse_table="events")
    replicated = _Client("ReplicatedReplacingMergeTree")
    assert sync_replica(replicated, contract, timeout_s=90)
    assert replicated.asked[0][1] == {"d": "audit", "t": "events"}
    assert replicated.asked[1] == ("SYSTEM SYNC REPLICA audit.events", None, {"receive_timeout": 90})
    for engine in ("ReplacingMergeTree", "Distributed", None):  # nothing to sync, or a table this server lacks
        plain = _Client(engine)
        assert not sync_replica(plain, contract)
        assert len(plain.asked) == 1
