"""The SQL-event generator: contract, reproducibility, and the fractions that drive each checker."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from loadtests.generator import GeneratedEvent, GeneratorConfig, SqlEventGenerator, derive_seed
from sqlaudit.checkers.normalize import normalize_sql
from sqlaudit.events import SqlType, decode_event

N = 40_000


def content(e: GeneratedEvent) -> tuple[object, ...]:
    ev = e.event
    return (ev.app, ev.database, ev.sql, ev.sql_type, ev.duration_ms, ev.rows_affected, ev.error_code)


def take(config: GeneratorConfig, n: int) -> list[GeneratedEvent]:
    return list(itertools.islice(SqlEventGenerator(config), n))


@pytest.fixture(scope="module")
def stream() -> list[GeneratedEvent]:
    return take(GeneratorConfig(seed=42, burst_size=20), N)


def test_same_seed_same_content_and_fresh_ids() -> None:
    a, b = take(GeneratorConfig(seed=7), 3000), take(GeneratorConfig(seed=7), 3000)
    assert [content(e) for e in a] == [content(e) for e in b]
    assert not {e.event.event_id for e in a} & {e.event.event_id for e in b}


def test_other_seed_other_content() -> None:
    a, b = take(GeneratorConfig(seed=7), 500), take(GeneratorConfig(seed=8), 500)
    assert sum(content(x) == content(y) for x, y in zip(a, b, strict=True)) < 50


def test_id_seed_reproduces_event_ids() -> None:
    a = take(GeneratorConfig(seed=1, id_seed=99), 200)
    b = take(GeneratorConfig(seed=1, id_seed=99), 200)
    assert [e.event.event_id for e in a] == [e.event.event_id for e in b]
    assert len({e.event.event_id for e in a}) == 200


def test_derive_seed_distinguishes_workers_and_users() -> None:
    seeds = {derive_seed(1, w, u) for w in range(4) for u in range(50)}
    assert len(seeds) == 200
    assert derive_seed(1, 0, 0) == derive_seed(1, 0, 0)


def test_every_event_is_a_valid_v1_message(stream: list[GeneratedEvent]) -> None:
    for e in stream[:5000]:
        assert decode_event(e.event.to_bytes()) == e.event
        assert e.key() == e.event.app.encode()


def test_several_apps_databases_and_statement_types(stream: list[GeneratedEvent]) -> None:
    assert len({e.event.app for e in stream}) >= 5
    assert len({e.event.database for e in stream}) >= 8
    assert {e.event.sql_type for e in stream} == set(SqlType)
    literal = sum(e.event.sql != e.normalized for e in stream)
    assert 0.55 < literal / N < 0.85  # ~70 % carry literals (normalized_fraction 0.3, OTHER have none)


@pytest.mark.parametrize(("name", "expected", "rel_tol"), [("slow", 0.02, 0.15), ("impact", 0.01, 0.2),
                                                            ("burst", 0.05, 0.25)])
def test_fractions_within_tolerance(stream: list[GeneratedEvent], name: str, expected: float,
                                    rel_tol: float) -> None:
    got = sum(getattr(e, name) for e in stream) / N
    assert got == pytest.approx(expected, rel=rel_tol), f"{name}: {got:.4f} vs {expected}"


def test_thresholds_are_crisp(stream: list[GeneratedEvent]) -> None:
    cfg = GeneratorConfig()
    for e in stream:
        ev = e.event
        assert (ev.duration_ms > cfg.slow_ms) == e.slow  # SlowQuery: duration_ms > threshold_ms
        dml = ev.sql_type in (SqlType.UPDATE, SqlType.DELETE)
        assert (dml and ev.rows_affected > cfg.impact_rows) == e.impact  # ActualImpact
        assert (ev.error_code is not None) == e.error


def test_error_ratio_per_app(stream: list[GeneratedEvent]) -> None:
    events = Counter(e.event.app for e in stream)
    errors = Counter(e.event.app for e in stream if e.error)
    for app, n in events.items():
        ratio = errors[app] / n
        if app == "legacy-batch":
            assert 0.52 < ratio < 0.66, ratio  # 0.6: above the ErrorRate threshold 0.5
        else:
            assert ratio < 0.012, (app, ratio)  # 0.005


def test_bursts_repeat_one_normalised_statement_of_one_app() -> None:
    cfg = GeneratorConfig(seed=3, burst_size=30, burst_fraction=0.2)
    events = take(cfg, 6000)
    runs = [list(g) for burst, g in itertools.groupby(events, key=lambda e: e.burst) if burst]
    assert len(runs) > 10
    for run in runs[:-1]:  # the last may be cut off by the sample's end
        assert len(run) % cfg.burst_size == 0  # back-to-back bursts merge into one run
        for chunk in range(0, len(run), cfg.burst_size):
            part = run[chunk:chunk + cfg.burst_size]
            assert len({(e.event.app, normalize_sql(e.event.sql)) for e in part}) == 1


def test_literal_and_parameterised_forms_normalise_alike(stream: list[GeneratedEvent]) -> None:
    # The Frequency checker counts normalize_sql(sql): both forms of a statement must meet.
    for e in stream[:10000]:
        assert normalize_sql(e.event.sql) == normalize_sql(e.normalized)


def test_background_spread_keeps_frequency_quiet(stream: list[GeneratedEvent]) -> None:
    # At 200 events/s a 10 s window holds 2000 events; no background statement may reach 100 of them.
    window = [e for e in stream[:2000] if not e.burst]
    top = Counter((e.event.app, normalize_sql(e.event.sql)) for e in window).most_common(1)[0][1]
    assert top < 50


def test_expected_rates_document_the_fractions() -> None:
    rates = GeneratorConfig().expected_rates(200.0)
    assert rates["slow_per_s"] == pytest.approx(4.0)
    assert rates["impact_per_s"] == pytest.approx(2.0)
    assert rates["error_ratio_by_app"]["legacy-batch"] == 0.6
    assert rates["bursts_per_s"] == pytest.approx(200 * 0.05 / 202)


@pytest.mark.parametrize(("kwargs", "field"), [({"slow_fraction": 1.5}, "slow_fraction"),
                                                ({"error_fraction": -0.1}, "error_fraction"),
                                                ({"burst_size": 1}, "burst_size"),
                                                ({"failing_app": "nope"}, "failing_app")])
def test_bad_generator_config_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**kwargs)  # type: ignore[arg-type]
