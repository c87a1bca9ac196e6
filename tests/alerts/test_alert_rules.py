"""The alert rules, checked by Prometheus' own tool: ``promtool check rules`` on every rendering, and
``promtool test rules`` on input series per alert (``cases.yaml``): each alert fires when it should and
stays silent otherwise. Also: every alert the guide names is in the catalogue and has a case, and the
local stack's rules file is the catalogue's current rendering.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import probes.alerts as alerts_mod
from probes.alerts import LOCAL_RULES_FILE, load_alerts, render, view_for
from probes.slo import load_catalogue

HERE = Path(__file__).resolve().parent
CASES = yaml.safe_load((HERE / "cases.yaml").read_text())
CAT = load_catalogue()
ALERTS = load_alerts(catalogue=CAT)

#: §5.2 of the operations guide, in its order.
GUIDE_ALERTS = [
    "HighKafkaConsumerLag", "CriticalKafkaConsumerLag", "KafkaConsumerDown",
    "HighProcessingLatency", "CriticalProcessingLatency", "HighProcessingErrorRate",
    "SlowChecker", "PostgreSQLConnectionPoolExhausted", "ClickHouseWriteLatencyHigh",
    "HighHeapMemoryUsage", "CriticalHeapMemoryUsage", "FrequentGarbageCollection",
    "High4xxErrorRate", "High5xxErrorRate", "SlowAPIResponse",
    "ApplicationNotReady", "ApplicationNotLive", "SLOViolation_Availability", "SLOViolation_Latency",
]

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool is not installed (Debian package prometheus)")


def _rendering(name: str) -> alerts_mod.Rendering:
    spec = CASES["renderings"][name]
    view = view_for(CAT, spec["target"], spec.get("profiles"))
    return render(ALERTS, CAT, view, title=f"--target {spec['target']}")


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _test_file(case: dict[str, Any], rules: dict[str, Any]) -> dict[str, Any]:
    rule = next(r for g in rules["groups"] for r in g["rules"] if r["alert"] == case["alert"])
    fired = {"exp_labels": {**rule["labels"], **(case["fires"].get("labels") or {})},
             "exp_annotations": rule["annotations"]}

    def test(part: str, expected: list[dict[str, Any]]) -> dict[str, Any]:
        return {"interval": case.get("interval", "15s"),
                "input_series": [{"series": s, "values": v} for s, v in case[part]["series"].items()],
                "alert_rule_test": [{"eval_time": case["eval_time"], "alertname": case["alert"],
                                     "exp_alerts": expected}]}

    return {"rule_files": ["rules.yaml"], "evaluation_interval": "1s",
            "tests": [test("fires", [fired]), test("quiet", [])]}


def _run_case(case: dict[str, Any], rules_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(rules_text)
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(_test_file(case, yaml.safe_load(rules_text)), sort_keys=False))
    return _promtool("test", "rules", "test.yaml", cwd=tmp_path)


def test_every_alert_of_the_guide_is_in_the_catalogue_once() -> None:
    assert ALERTS.names() == GUIDE_ALERTS


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    assert {c["alert"] for c in CASES["cases"]} == set(ALERTS.names())


def test_every_alert_is_rendered_for_the_local_stack_or_for_the_spring_service() -> None:
    local, spring = _rendering("local"), _rendering("spring")
    assert set(local.rendered) | set(spring.rendered) == set(ALERTS.names())
    assert set(local.left_out) == {"PostgreSQLConnectionPoolExhausted", "HighHeapMemoryUsage",
                                   "CriticalHeapMemoryUsage", "FrequentGarbageCollection", "High4xxErrorRate",
                                   "High5xxErrorRate", "SlowAPIResponse"}


def test_the_local_stack_loads_the_current_rendering() -> None:
    """deploy/local/alert-rules.yaml is what `python -m probes.alerts render` prints now."""
    assert LOCAL_RULES_FILE.read_text() == _rendering("local").text, \
        "regenerate: python -m probes.alerts render > deploy/local/alert-rules.yaml"


def test_the_local_cluster_loads_the_current_rendering_for_its_target_file() -> None:
    """deploy/k8s/local/system/alert-rules.yaml (the cluster's Prometheus) is the rendering for the view the
    cluster's target file sets: without rules there, every expected alert of a cluster run is inconclusive."""
    from cluster import system
    from cluster.settings import ClusterSettings

    keys = system.target_keys(ClusterSettings.from_env(env={"RESILIENCE_DATA_ROOT": "/var/tmp/x"}))
    profiles = ",".join(keys["metric_profiles"])
    view = view_for(CAT, "kubernetes", profiles)
    assert view.selector == keys["metric_selector"]
    path = HERE.parents[1] / "deploy" / "k8s" / "local" / "system" / "alert-rules.yaml"
    assert path.read_text() == render(ALERTS, CAT, view, title=f"--target kubernetes --profiles {profiles}").text, \
        f"regenerate: python -m probes.alerts render --target kubernetes --profiles {profiles} > {path}"


def test_a_threshold_the_guide_does_not_give_is_marked_ours() -> None:
    guide = {a.alert for a in ALERTS.alerts if a.threshold == "guide"}
    assert guide == {"HighKafkaConsumerLag", "HighProcessingLatency", "SLOViolation_Availability",
                     "SLOViolation_Latency"}


def test_a_bad_alert_file_names_the_field(tmp_path: Path) -> None:
    data = yaml.safe_load(alerts_mod.DEFAULT_ALERTS_FILE.read_text())
    data["alerts"][2]["for"] = "soon"
    bad = tmp_path / "alerts.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(alerts_mod.AlertFileError, match=r"alerts\[2\] \(alert=KafkaConsumerDown\)\.for"):
        load_alerts(bad, CAT)
    data["alerts"][2]["for"] = "10s"
    data["alerts"][2]["expr"] = "{no_such_measure} > 1"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(alerts_mod.AlertFileError, match=r"KafkaConsumerDown.*no_such_measure"):
        load_alerts(bad, CAT)


@needs_promtool
@pytest.mark.parametrize("name", ["local", "spring"])
def test_promtool_check_rules(name: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(_rendering(name).text)
    proc = _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: f"{c['alert']}-{c['rendering']}")
def test_alert_fires_when_it_should_and_is_silent_otherwise(case: dict[str, Any], tmp_path: Path) -> None:
    proc = _run_case(case, _rendering(case["rendering"]).text, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_the_watchdog_always_fires(tmp_path: Path) -> None:
    text = _rendering("local").text
    (tmp_path / "rules.yaml").write_text(text)
    rule = next(r for r in yaml.safe_load(text)["groups"][0]["rules"] if r["alert"] == "Watchdog")
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "1s", "tests": [{
        "interval": "1s", "input_series": [],
        "alert_rule_test": [{"eval_time": "5s", "alertname": "Watchdog",
                             "exp_alerts": [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]}]}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    proc = _promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_measures_are_parenthesised_in_an_expression(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the parentheses, ``sum(...) or vector(0) == 0`` compares only the ``vector(0)``: KafkaConsumerDown
    would fire while replicas hold partitions. The quiet case catches it (this test fails if the guard goes)."""
    def bare(alert: alerts_mod.Alert, cat: Any, view: Any) -> str:
        return alert.expr.format(**{m: cat.query(m, view, window=alert.window) for m in alert.measures()})

    case = next(c for c in CASES["cases"] if c["alert"] == "KafkaConsumerDown")
    monkeypatch.setattr(alerts_mod, "expression", bare)
    proc = _run_case(case, _rendering("local").text, tmp_path)
    assert proc.returncode != 0 and "KafkaConsumerDown" in proc.stdout + proc.stderr
