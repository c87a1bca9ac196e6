"""Bad input stops a load run before any load starts, with a message naming the argument or address."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loadtests.config import LoadConfigError, LoadSpec, check_mix
from loadtests.generator import SqlEventGenerator
from loadtests.locust_process import LOCUSTFILE, start_load
from resilience.experiments import EXPERIMENTS_DIR, ExperimentError
from resilience.experiments import load as load_experiment

LOCUST_TIMEOUT_S = 60


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # nobody listens once the socket is closed


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"shape": "zigzag"}, r"shape: unknown load shape 'zigzag'"),
    ({"rate": 0}, r"rate: must be > 0, got 0"),
    ({"rate": -5}, r"rate: must be > 0, got -5"),
    ({"duration": 0}, r"duration: must be > 0"),
    ({"workers": -1}, r"workers: must be an integer >= 0"),
    ({"bootstrap": "no-port"}, r"bootstrap: 'no-port' .* is not host:port"),
    ({"options": {"api_urls": "ftp://127.0.0.1:1"}}, r"api_urls: 'ftp://127.0.0.1:1' is not an http\(s\) base URL"),
    ({"options": {"api_urls": "http://127.0.0.1:1", "api_rate": 0}}, r"api_rate: must be > 0"),
    ({"options": {"api_urls": "http://127.0.0.1:1", "api_bad_token_share": 1.5}},
     r"api_bad_token_share: must be within 0..1"),
    ({"options": {"api_urls": "http://127.0.0.1:1"}}, r"api_urls: the read API's token key .* is required"),
])
def test_start_load_refuses_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"bootstrap": closed_port(), "run_dir": str(tmp_path / "run"), **kwargs}
    with pytest.raises(LoadConfigError, match=message):
        start_load(**args)  # type: ignore[arg-type]
    assert not (tmp_path / "run" / "load.json").exists()  # nothing was started


def test_start_load_names_an_unreachable_bootstrap(tmp_path: Path) -> None:
    address = closed_port()
    with pytest.raises(LoadConfigError, match=rf"bootstrap: Kafka unreachable at {address}"):
        start_load(address, run_dir=str(tmp_path / "run"), check_timeout=2)
    assert not (tmp_path / "run").exists()


def run_locust(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", *args],
                          capture_output=True, text=True, timeout=LOCUST_TIMEOUT_S, stdin=subprocess.DEVNULL)


def test_locust_cli_refuses_zero_rate() -> None:
    done = run_locust("--kafka-bootstrap", closed_port(), "--rate", "0")
    assert done.returncode != 0
    assert "--rate: must be > 0, got 0" in done.stderr
    assert "Ramping" not in done.stderr and "Shape test starting" not in done.stderr


def test_locust_cli_refuses_unknown_shape() -> None:
    done = run_locust("--kafka-bootstrap", closed_port(), "--shape", "zigzag")
    assert done.returncode != 0
    assert "argument --shape: invalid choice: 'zigzag'" in done.stderr


def test_locust_cli_names_the_unreachable_address() -> None:
    address = closed_port()
    done = run_locust("--kafka-bootstrap", address, "--rate", "10", "--duration", "5")
    assert done.returncode != 0
    assert f"bootstrap: Kafka unreachable at {address}" in done.stderr
    assert "Shape test starting" not in done.stderr


@pytest.mark.stack
def test_missing_topic_is_named(kafka_bootstrap: str, tmp_path: Path) -> None:
    with pytest.raises(LoadConfigError, match=r"topic: 'no-such-topic' not found"):
        start_load(kafka_bootstrap, topic="no-such-topic", run_dir=str(tmp_path / "run"), check_timeout=3)


def test_locust_cli_refuses_missing_bootstrap_before_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOADTESTS_BOOTSTRAP", raising=False)
    done = run_locust("--rate", "10")
    assert done.returncode != 0
    assert "--kafka-bootstrap: required" in done.stderr


@pytest.mark.parametrize("value", ["fast", "-21", "20"])
def test_start_load_names_a_bad_priority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RESILIENCE_LOAD_NICE", value)
    with pytest.raises(LoadConfigError, match=rf"RESILIENCE_LOAD_NICE='{value}': expected an integer from -20 to 19"):
        start_load(closed_port(), run_dir=str(tmp_path / "run"), check_timeout=2)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("mix", "message"), [
    ({"slow_fractoin": 0.1}, r"mix\.slow_fractoin: unknown knob \(known: slow_fraction, "),
    ({"slow_fraction": "ten"}, r"mix\.slow_fraction: must be a share in \[0, 1\), got 'ten'"),
    ({"slow_fraction": True}, r"mix\.slow_fraction: must be a share"),
    ({"slow_fraction": 1.5}, r"mix: slow_fraction must be in \[0, 1\), got 1.5"),
    ({"slow_fraction": 0.5, "burst_fraction": 0.5}, r"mix: slow_fraction \+ impact_fraction \+ burst_fraction"),
    ([0.1], r"mix: must be a mapping of slow_fraction, "),
])
def test_a_bad_event_mix_is_named(mix: object, message: str) -> None:
    with pytest.raises(LoadConfigError, match=message):
        check_mix(mix)


def test_an_event_mix_reaches_the_generator() -> None:
    mix = check_mix({"slow_fraction": 0.1, "impact_fraction": 0.05})
    assert mix == {"slow_fraction": 0.1, "impact_fraction": 0.05} and check_mix(None) == {}
    generator = SqlEventGenerator(LoadSpec(bootstrap="127.0.0.1:1", seed=3, **mix).generator_config())
    events = [generator.next() for _ in range(5000)]
    slow = sum(e.slow for e in events) / len(events)
    impact = sum(e.impact for e in events) / len(events)
    assert 0.085 < slow < 0.115 and 0.04 < impact < 0.06, (slow, impact)  # the defaults: 0.02 and 0.01


def test_an_experiment_with_a_bad_event_mix_is_refused_naming_the_file_and_the_action(tmp_path: Path) -> None:
    doc = yaml.safe_load((EXPERIMENTS_DIR / "pod_failure.yaml").read_text())
    start = next(i for i, a in enumerate(doc["method"]) if a["provider"].get("func") == "start_load")
    doc["method"][start]["provider"]["arguments"]["mix"] = {"slow_fractoin": 0.1}
    bad = tmp_path / "bad_mix.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ExperimentError) as err:
        load_experiment(bad)
    assert str(err.value).startswith(f"{bad}: method[{start}] ({doc['method'][start]['name']}).arguments.mix."
                                      "slow_fractoin: unknown knob"), err.value
    assert load_experiment(EXPERIMENTS_DIR / "postgres_failover_ha.yaml").load_mix == {"slow_fraction": 0.1}
    assert load_experiment(EXPERIMENTS_DIR / "pod_failure.yaml").load_mix == {}
