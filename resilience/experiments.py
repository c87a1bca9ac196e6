"""The experiment catalogue: Chaos Toolkit files under ``experiments/`` and what we add to them.

Each experiment carries an ``extensions`` entry named ``sql-audit-resilience``::

    extensions:
      - name: sql-audit-resilience
        scenario: pod_failure      # a scenario id of docs/slo.yaml: its RTO/RPO and SLOs judge the run
        profile: minimal           # stack profile the experiment needs
        tags: [gate, fast]         # `resilience gate --tag fast`
        stabilization_s: 10        # how long recovery must hold to count (RTO)
        slos: [...]                # optional: judge these SLO ids instead of the scenario's list
        expect_effect:             # what the fault must visibly do, else the run is inconclusive
          - {measure: replicas_ready, at_most: 2}
        expect_probes:             # optional: a method probe's output must equal this (one verdict each)
          - {name: config-in-effect, equals: [3000, 3000, 3000]}
        drain_timeout_s: 180       # how long to wait for lag 0 before judging data loss
        expect_alerts:             # optional: alerts of docs/alerts.yaml that must fire during the fault
          - {alert: HighKafkaConsumerLag, within_s: 90}

Load parameters live in the experiment's ``configuration`` (``load_shape``, ``load_rate``,
``load_duration``, ``load_seed``) so that a plain ``chaos run`` uses them too; the runner
overrides them from its command line through the environment. The load's event mix (the share of
events each checker flags) is an argument of its ``start_load`` action, ``mix: {slow_fraction: 0.1}``,
checked here (:func:`loadtests.config.check_mix`) so that a bad knob stops the run before any fault.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stack.paths import REPO_ROOT

EXPERIMENTS_DIR = REPO_ROOT / "experiments"
EXTENSION = "sql-audit-resilience"

__all__ = ["EXPERIMENTS_DIR", "Experiment", "ExperimentError", "catalogue", "load", "resolve"]


class ExperimentError(ValueError):
    """An experiment that cannot be run; the message names the file and the field."""


class ExpectedProbe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    equals: Any


class ExpectedAlert(BaseModel):
    """An alert of ``docs/alerts.yaml`` that must be firing within ``within_s`` seconds of the fault's start
    (judged from Prometheus' ``ALERTS`` series: ``resilience/alerting.py``)."""

    model_config = ConfigDict(extra="forbid")

    alert: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    within_s: float = Field(gt=0, description="seconds after the fault's start by which the alert must fire")
    if_measured: bool = Field(
        default=False, description="expected only where the run's metric view measures what the alert reads (the "
                                   "JVM's, the HTTP API's and the connection pool's alerts: the Spring service's "
                                   "Micrometer metrics); elsewhere the run drops it and says so. Without it an alert "
                                   "the view cannot evaluate is refused before the run.")


class Effect(BaseModel):
    """What the fault must visibly do to the system for the run to prove anything.

    The measure (a measure of the SLO catalogue, read through the run's metric view) must reach
    ``at_least`` (or fall to ``at_most``) at some sample between the fault's start and
    ``within_s`` seconds after its end; otherwise the run is inconclusive: "fault did not take
    effect" (a partition an allow policy defeated, a stall of the wrong process...), never a pass.
    """

    model_config = ConfigDict(extra="forbid")

    measure: str
    at_least: float | None = None
    at_most: float | None = None
    window: str = Field(default="5s", pattern=r"^[0-9]+(ms|s|m)$", description="rate window of the measure")
    within_s: float = Field(default=15.0, ge=0, description="seconds after the fault's end the effect may lag")

    @model_validator(mode="after")
    def _one_bound(self) -> Effect:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of at_least and at_most")
        return self

    def describe(self) -> str:
        return f"{self.measure} >= {self.at_least:g}" if self.at_least is not None else \
            f"{self.measure} <= {self.at_most:g}"


class Extension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    scenario: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    profile: str = "minimal"
    tags: list[str] = Field(default_factory=list)
    stabilization_s: float = Field(default=10.0, ge=0)
    drain_timeout_s: float = Field(default=180.0, gt=0)
    expected_replicas: int = Field(default=3, ge=1)
    expect_effect: list[Effect] = Field(
        default_factory=list, description="What the fault must visibly do (each a fault_effect verdict); every "
                                          "experiment declares at least one effect or one expected probe.")
    min_load_ratio: float = Field(
        default=0.8, gt=0, le=1, description="Share of the planned load that must be acknowledged for the run to "
                                             "count; lower it where the fault itself stops acknowledgements.")
    expect_probes: list[ExpectedProbe] = Field(
        default_factory=list, description="Method probes whose journal output must equal a value (each a verdict).")
    expect_alerts: list[ExpectedAlert] = Field(
        default_factory=list, description="Alerts that must fire during the fault (each an alert:<name> verdict).")
    slos: list[str] | None = Field(default=None, description="SLO ids judged instead of the scenario's list "
                                                             "(e.g. without Patroni on the minimal profile).")
    repeat: int = Field(default=1, ge=1, le=100, description="Trials per gate run (`resilience gate`); each SLO "
                                                             "then gets a confidence interval (docs/report.md).")

    @model_validator(mode="after")
    def _declares_an_effect(self) -> Extension:
        if not self.expect_effect and not self.expect_probes:
            raise ValueError("declare the effect the fault must have (expect_effect) or a method probe that "
                             "proves it (expect_probes): a fault that did not bite must not pass")
        return self


@dataclass(frozen=True)
class Experiment:
    path: Path
    doc: dict[str, Any]
    ext: Extension

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def title(self) -> str:
        return str(self.doc.get("title", self.name))

    @property
    def load_mix(self) -> dict[str, float]:
        """The event mix of the experiment's load (its ``start_load`` action's ``mix``; ``{}``: the defaults)."""
        from loadtests.config import check_mix

        actions = _load_actions(self.doc)
        return check_mix((actions[0][1]["provider"].get("arguments") or {}).get("mix")) if actions else {}

    def config_default(self, key: str) -> Any:
        """The default of a configuration key (``{type: env, default: ...}`` or a plain value)."""
        value = self.doc.get("configuration", {}).get(key)
        if isinstance(value, dict):
            return value.get("default")
        return value


def load(path: Path) -> Experiment:
    """Load and validate one experiment (Chaos Toolkit's own validation, then our extension).

    Raises:
        ExperimentError: naming the file and what is wrong.
    """
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    if not path.is_file():
        raise ExperimentError(f"{path}: no such experiment file")
    try:
        doc = load_experiment(str(path))
    except (ChaosException, OSError, ValueError) as exc:
        raise ExperimentError(f"{path}: cannot load: {exc}") from None
    try:
        ensure_experiment_is_valid(doc)
    except ChaosException as exc:
        raise ExperimentError(f"{path}: invalid experiment: {exc}") from None
    entries = [e for e in doc.get("extensions", []) if isinstance(e, dict) and e.get("name") == EXTENSION]
    if len(entries) != 1:
        raise ExperimentError(f"{path}: extensions: needs exactly one entry named {EXTENSION!r} "
                              f"(scenario, profile, tags), found {len(entries)}")
    try:
        ext = Extension.model_validate(entries[0])
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ExperimentError(f"{path}: extensions[{EXTENSION}].{field}: {err['msg']}") from None
    _check_load_mix(path, doc)
    return Experiment(path=path, doc=doc, ext=ext)


def _load_actions(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The experiment's ``loadtests.activities.start_load`` actions, each with where it is (``method[0]``)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for section in ("method", "rollbacks"):
        for i, activity in enumerate(doc.get(section) or []):
            provider = activity.get("provider") if isinstance(activity, dict) else None
            if (isinstance(provider, dict) and provider.get("module") == "loadtests.activities"
                    and provider.get("func") == "start_load"):
                found.append((f"{section}[{i}]", activity))
    return found


def _check_load_mix(path: Path, doc: dict[str, Any]) -> None:
    from loadtests.config import LoadConfigError, check_mix

    for where, activity in _load_actions(doc):
        try:
            check_mix((activity["provider"].get("arguments") or {}).get("mix"))
        except LoadConfigError as exc:
            raise ExperimentError(f"{path}: {where} ({activity.get('name', 'start_load')}).arguments.{exc}") from None


def catalogue(directory: Path = EXPERIMENTS_DIR) -> list[Experiment]:
    """Every experiment in ``directory`` (sorted by file name); an invalid one raises."""
    return [load(p) for p in sorted(directory.glob("*.yaml"))]


def resolve(name_or_path: str, directory: Path = EXPERIMENTS_DIR) -> Path:
    """A path as given, or ``experiments/<name>.yaml`` for a scenario or file name."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml", ".json") or os.sep in name_or_path:
        return candidate
    path = directory / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(p.stem for p in sorted(directory.glob("*.yaml"))) or "none"
        raise ExperimentError(f"no experiment named {name_or_path!r} in {directory} (known: {known})")
    return path
