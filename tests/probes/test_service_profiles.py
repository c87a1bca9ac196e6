"""The metric contract per service: ``--service spring`` reads the Spring Boot service by its Micrometer names,
the Python service keeps its own, and an SLO over the read API is not applicable where there is none.

Fast (no stack): every query either view can send is built here and scanned for metric names. The live proof
(every query a real Spring run sent, from Prometheus' query log) is tests/spring/test_spring_queries.py.
"""

from __future__ import annotations

import re

import pytest

from probes.evaluate import RunWindow, evaluate
from probes.slo import Catalogue, MetricView, PromQuery, load_catalogue
from resilience.check_target import check_measures
from tests.spring.spring_harness import PYTHON_ONLY_SERIES

#: Every metric name a Spring replica exports under a name starting ``sqlaudit_`` (services/spring/README.md).
SPRING_SQLAUDIT_SERIES = ("sqlaudit_events_processed_total", "sqlaudit_events_failed_total",
                          "sqlaudit_events_latency_seconds", "sqlaudit_events_processing_seconds",
                          "sqlaudit_checker_duration_seconds", "sqlaudit_checker_violations_total",
                          "sqlaudit_checker_late_events_total", "sqlaudit_sink_write_seconds")
_NAME = re.compile(r"\b(sqlaudit_[a-z_]+)")


def every_query(cat: Catalogue, view: MetricView) -> list[str]:
    """Each measure's and each applicable PromQL SLO's query under ``view``."""
    queries = [cat.query(m, view) for m in cat.measures if cat.measure_template(m, view) is not None]
    queries += [cat.promql(s.id, view) for s in cat.slos
                if isinstance(s.measure, PromQuery) and cat.applicable(s.id, view)]
    return queries


def python_names_read(queries: list[str]) -> set[str]:
    """The Python-only series (or their ``_bucket``/``_count``... children) the queries read."""
    found = set()
    for q in queries:
        for name in _NAME.findall(q):
            found |= {p for p in PYTHON_ONLY_SERIES if name == p or name.startswith(p + "_")}
    return found


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue()


@pytest.mark.parametrize("target", ["local", "kubernetes"])
def test_spring_view_reads_no_python_series(cat: Catalogue, target: str) -> None:
    view = cat.view(target, service="spring")
    assert "micrometer" in view.profiles and "python-reference" not in view.profiles
    queries = every_query(cat, view)
    assert len(queries) > 10
    assert python_names_read(queries) == set()
    for q in queries:  # and every sqlaudit_* name it reads is one the Spring service exports
        for name in _NAME.findall(q):
            assert any(name == s or name.startswith(s + "_") for s in SPRING_SQLAUDIT_SERIES), (name, q)


def test_the_scan_finds_python_series_in_the_python_view(cat: Catalogue) -> None:
    """The scan above can fail: the Python view reads Python-only series."""
    assert "sqlaudit_end_to_end_latency_seconds" in python_names_read(every_query(cat, cat.view("local")))


def test_service_selects_profiles_and_flags_win(cat: Catalogue) -> None:
    assert cat.view("local").profiles == ("local-kubelet", "kubernetes", "python-reference")
    assert cat.view("local", service="python").profiles == cat.view("local").profiles
    assert cat.view("local", service="spring").profiles == ("local-kubelet", "kubernetes", "micrometer")
    assert cat.view("local", profiles=["micrometer"], service="python").profiles == ("micrometer",)
    with pytest.raises(KeyError, match=r"no metric profiles for service 'quarkus'.*python, spring"):
        cat.view("local", service="quarkus")


def test_api_slos_apply_only_where_the_view_defines_the_api(cat: Catalogue) -> None:
    python, spring = cat.view("local"), cat.view("local", service="spring")
    for slo in ("api_availability", "api_latency_p95"):
        assert not cat.applicable(slo, python)
        assert cat.applicable(slo, spring)
    assert cat.applicable("availability", python)
    assert {"api_availability", "api_latency_p95"} <= set(cat.scenario("pod_failure").slos)


def test_a_not_applicable_slo_is_never_judged(cat: Catalogue) -> None:
    """evaluate() skips it without asking Prometheus (an unreachable URL would make it inconclusive)."""
    window = RunWindow(start=1000.0, end=1100.0, fault_start=None, fault_end=None)
    verdicts = evaluate(cat, cat.view("local"), "http://127.0.0.1:9", window,
                        slo_ids=["api_availability", "api_latency_p95"])
    assert verdicts == []
    judged = evaluate(cat, cat.view("local", service="spring"), "http://127.0.0.1:9", window,
                      slo_ids=["api_availability"])
    assert [v.outcome.value for v in judged] == ["inconclusive"]


def test_burn_rate_safeguards_skip_what_the_service_lacks(cat: Catalogue) -> None:
    """The safeguards of a Python run of pod_failure: no rule over the API (and no MeasureUndefined)."""
    from probes.burnrate import burn_rules

    slos = list(cat.scenario("pod_failure").slos)
    assert {r.slo for r in burn_rules(cat, cat.view("local"), slos)} == {"availability"}
    assert {r.slo for r in burn_rules(cat, cat.view("local", service="spring"), slos)} == {"availability",
                                                                                           "api_availability"}


def test_an_optional_measure_is_required_of_no_target(cat: Catalogue) -> None:
    """Moved from optional_measures to measures, the API's would be required of the Python service's chain."""
    data = cat.model_dump()
    for m in ("api_availability", "api_p95"):
        data["measures"][m] = data["optional_measures"].pop(m)
    with pytest.raises(ValueError, match=r"target 'local' does not define measures \['api_availability', 'api_p95'\]"):
        Catalogue.model_validate(data)


def test_check_target_reports_an_undefined_optional_measure_as_usable(cat: Catalogue,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from probes import prom

    monkeypatch.setattr(prom, "wait_ready", lambda url, timeout_s: None)
    checks = check_measures(cat, cat.view("local"), "http://127.0.0.1:9", ["api_availability"])
    assert [(c.status, c.usable) for c in checks] == [("optional", True)]


def test_the_spring_stack_loads_the_current_spring_rendering_of_the_alerts() -> None:
    """deploy/local/alert-rules-spring.yaml is what `python -m probes.alerts render` prints now for the Spring chain,
    and reads no Python series."""
    import subprocess
    import sys

    from stack.components.prometheus import ALERT_RULES_SPRING

    chain = ",".join(load_catalogue().view("local", service="spring").profiles)
    out = subprocess.run([sys.executable, "-m", "probes.alerts", "render", "--target", "local", "--profiles", chain],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert ALERT_RULES_SPRING.read_text() == out, (f"regenerate: python -m probes.alerts render --target local "
                                                   f"--profiles {chain} > deploy/local/alert-rules-spring.yaml")
    assert python_names_read([out]) == set()
