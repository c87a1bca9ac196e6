"""The residue audit's StatefulSet rule (faults/kubernetes/residue.py) for holds of a set's first ordinal."""

from __future__ import annotations

from faults.kubernetes.residue import AT_REST, statefulsets_rule


def sts(replicas: int, start: int, **annotations: str) -> dict[str, object]:
    return {"ns/postgres": {"replicas": replicas, "start": start, "restarted_at": None,
                            "annotations": {f"sql-audit-resilience/{k.replace('_', '-')}": v
                                            for k, v in annotations.items()}}}


def test_a_first_ordinal_left_moved_is_a_leftover_even_at_the_same_count() -> None:
    found = statefulsets_rule(sts(2, 0), sts(2, 1), "before the run")
    assert [str(f.what) for f in found] == ["spec.ordinals.start 1 (was 0 before the run)"]
    assert statefulsets_rule(sts(2, 0), sts(2, 0), "before the run") == []


def test_a_set_held_by_its_first_ordinal_is_judged_at_its_recorded_count_and_start() -> None:
    """A snapshot taken while a hold runs (an interrupted run's audit) compares the set as the restore will leave it."""
    held = sts(1, 1, replicas_before="2", held_by="postgres_failover", ordinals_start_before="0")
    assert AT_REST["statefulsets"](held) == sts(2, 0)
