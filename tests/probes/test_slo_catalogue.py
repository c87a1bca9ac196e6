"""The SLO catalogue: complete, consistent, rendered, and strict about bad files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from probes.slo import DEFAULT_SLO_FILE, MeasureUndefined, SloFileError, load_catalogue, render_markdown

REPO = Path(__file__).resolve().parents[2]


def test_catalogue_holds_the_documented_numbers() -> None:
    cat = load_catalogue()
    assert cat.slo("availability").objective.value == 99.9
    assert cat.slo("latency_p95").objective.value == 0.5
    assert cat.slo("consumer_lag_warning").objective.value == 10000
    assert cat.slo("patroni_failover").objective.value == 30
    assert cat.slo("pdb_min_available").objective.value == 2
    expected = {  # scenario: (RTO max s, RPO max s) from the seed's disaster-recovery table
        "pod_failure": (60, 0), "consumer_lag_critical": (1800, 0), "postgres_failure": (1800, 300),
        "clickhouse_failure": (1800, 0), "cluster_loss": (7200, 300), "region_failure": (1800, 900),
    }
    for sid, (rto, rpo) in expected.items():
        sc = cat.scenario(sid)
        assert sc.rto is not None and sc.rpo is not None
        assert (sc.rto.max_s, sc.rpo.max_s) == (rto, rpo), sid


def test_every_promql_slo_and_measure_renders_for_every_target() -> None:
    cat = load_catalogue()
    views = [(target, service) for target, t in cat.targets.items() for service in [None, *t.services]]
    for target, service in views:
        view = cat.view(target, service=service)
        queries = [cat.promql(s.id, view, window="30s") for s in cat.slos
                   if hasattr(s.measure, "promql") and cat.applicable(s.id, view)]
        queries += [cat.query(m, view, window="30s") for m in cat.measures if cat.measure_template(m, view)]
        for q in queries:
            assert not re.search(r"\{[a-z_]*\}", q), f"unfilled placeholder in {q} ({target}, {service})"
            assert q.count("(") == q.count(")"), q


def test_a_profile_chain_picks_the_first_definition_and_labels_fill_the_selector() -> None:
    cat = load_catalogue()
    view = cat.view("kubernetes", labels={"namespace": "sql-audit-staging", "statefulset": "audit"})
    assert view.selector == 'namespace="sql-audit-staging", app="sql-audit-service"'
    ready = cat.query("replicas_ready", view)
    assert ready.startswith("sum(kube_pod_status_ready{") and 'pod=~"audit-[0-9]+"' in ready
    assert "sqlaudit_processing_latency_seconds_bucket" in cat.query("processing_p95", view, window="30s")
    only_k8s = cat.view("kubernetes", profiles=["kubernetes"])
    with pytest.raises(MeasureUndefined, match="no metric profile of \\['kubernetes'\\] defines measure 'e2e_p95'"):
        cat.query("e2e_p95", only_k8s)
    with pytest.raises(KeyError, match="unknown metric profiles \\['nope'\\]"):
        cat.view("local", profiles=["nope"])


def test_rendered_markdown_is_up_to_date() -> None:
    rendered = render_markdown(load_catalogue())
    assert (REPO / "docs" / "slo.md").read_text() == rendered, "run: python -m probes.slo render > docs/slo.md"


def _broken(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(DEFAULT_SLO_FILE.read_text())
    mutate(data)
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate, expect", [
    (lambda d: d["slos"][1]["objective"].update(value="fast"), r"slos\[1\] \(id=latency_p95\)\.objective\.value"),
    (lambda d: d["slos"][0]["objective"].update(comparison="=>"),
     r"slos\[0\] \(id=availability\)\.objective\.comparison"),
    (lambda d: d["slos"][2].pop("source"), r"slos\[2\] \(id=latency_p95_end_to_end\)\.source"),
    (lambda d: d["slos"][0].update(colour="red"), r"slos\[0\] \(id=availability\)\.colour: Extra inputs"),
    (lambda d: d["scenarios"][0]["slos"].append("nope"), r"scenario 'pod_failure' names unknown SLOs \['nope'\]"),
    (lambda d: d["targets"]["kubernetes"].update(profiles=["kubernetes"]),
     r"target 'kubernetes' does not define measures \[.*'clickhouse_slow_writes'"),
    (lambda d: d["profiles"]["kubernetes"]["measures"].update(lag="x"),
     r"profile .kubernetes. defines unknown measures"),
    (lambda d: d["slos"][1]["measure"].update(promql="{p95}"), r"SLO 'latency_p95' uses \['p95'\], which are not"),
])
def test_bad_file_names_the_file_and_the_field(tmp_path: Path, mutate, expect: str) -> None:  # type: ignore[no-untyped-def]
    path = _broken(tmp_path, mutate)
    with pytest.raises(SloFileError, match=expect) as err:
        load_catalogue(path)
    assert str(path) in str(err.value)


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(SloFileError, match="cannot read"):
        load_catalogue(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("slos: [\n")
    with pytest.raises(SloFileError, match="not valid YAML"):
        load_catalogue(bad)


def test_cli_check_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "probes.slo", "check"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = _broken(tmp_path, lambda d: d["slos"][0]["objective"].pop("unit"))
    res = subprocess.run([sys.executable, "-m", "probes.slo", "check", str(bad)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2
    assert "objective.unit" in res.stderr
