"""The SLO catalogue (``docs/slo.yaml``): schema, loading and rendering.

Every SLO and threshold the service's operations documents promise, each with how
it is measured (a PromQL query over logical metric names, or a probe), its unit,
its objective and the section of the source document it comes from. Logical metric
names are mapped per target, so the same catalogue judges the local reference
service and the real one in staging.

    python -m probes.slo check [FILE]     validate (exit 0 / 2 with the file and field)
    python -m probes.slo render [FILE]    print the Markdown rendering (docs/slo.md)
"""

from __future__ import annotations

import re
import string
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_SLO_FILE = Path(__file__).resolve().parent.parent / "docs" / "slo.yaml"

__all__ = ["DEFAULT_SLO_FILE", "Catalogue", "SloFileError", "load_catalogue"]


class SloFileError(ValueError):
    """The SLO file cannot be used; the message names the file and the field."""


class Comparison(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="

    def holds(self, measured: float, objective: float) -> bool:
        return {
            "<": measured < objective, "<=": measured <= objective, ">": measured > objective,
            ">=": measured >= objective, "==": measured == objective,
        }[self.value]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Objective(_Strict):
    comparison: Comparison
    value: float
    unit: Literal["percent", "ratio", "seconds", "milliseconds", "events", "replicas", "count"]


class PromQuery(_Strict):
    """A PromQL expression; ``{name}`` placeholders are logical metric names, ``{selector}``
    the target's label selector, ``{window}`` the evaluation window."""

    promql: str
    aggregate: Literal["max", "min", "last", "mean"] = Field(
        default="max", description="How a range of values over the run becomes one number.")


class ProbeMeasure(_Strict):
    """Measured by a Python probe (RTO, RPO, data loss) rather than a single query."""

    probe: str


class Slo(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    title: str
    objective: Objective
    measure: PromQuery | ProbeMeasure
    source: str = Field(min_length=3, description="Section of the source document the number comes from.")
    notes: str = ""
    alert: Literal["warning", "critical"] | None = None


class Bound(_Strict):
    """An RTO or RPO: ``max_s`` is what is judged; ``text`` is what the document says."""

    max_s: float = Field(ge=0)
    min_s: float | None = Field(default=None, ge=0)
    text: str


class Scenario(_Strict):
    """A disaster-recovery or troubleshooting scenario of the source document."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    title: str
    rto: Bound | None = None
    rpo: Bound | None = None
    slos: list[str] = Field(default_factory=list, description="Ids of SLOs judged during this scenario.")
    source: str
    local: str = Field(description="How the scenario runs on the local stack, or why it cannot.")
    notes: str = ""


class Target(_Strict):
    """How logical metric names and labels map onto one target's Prometheus."""

    selector: str = Field(description="Label matchers selecting the audit service, e.g. job=\"audit-service\"")
    metrics: dict[str, str]


class Catalogue(_Strict):
    version: Literal[1]
    source: str
    targets: dict[str, Target]
    slos: list[Slo]
    scenarios: list[Scenario]

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        ids = [s.id for s in self.slos]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate SLO ids: {dupes}")
        known = set(ids)
        for sc in self.scenarios:
            unknown = [s for s in sc.slos if s not in known]
            if unknown:
                raise ValueError(f"scenario {sc.id!r} names unknown SLOs {unknown}")
        for slo in self.slos:
            if isinstance(slo.measure, PromQuery):
                names = _placeholders(slo.measure.promql) - {"selector", "window"}
                for tname, target in self.targets.items():
                    missing = sorted(names - set(target.metrics))
                    if missing:
                        raise ValueError(f"SLO {slo.id!r} uses metrics {missing} that target {tname!r} does not map")
        return self

    def slo(self, slo_id: str) -> Slo:
        for s in self.slos:
            if s.id == slo_id:
                return s
        raise KeyError(f"no SLO {slo_id!r}; known: {', '.join(s.id for s in self.slos)}")

    def scenario(self, scenario_id: str) -> Scenario:
        for s in self.scenarios:
            if s.id == scenario_id:
                return s
        raise KeyError(f"no scenario {scenario_id!r}; known: {', '.join(s.id for s in self.scenarios)}")

    def promql(self, slo_id: str, target: str, window: str = "1m") -> str:
        """The SLO's query with the target's metric names and selector filled in."""
        slo = self.slo(slo_id)
        if not isinstance(slo.measure, PromQuery):
            raise ValueError(f"SLO {slo_id!r} is measured by probe {slo.measure.probe!r}, not PromQL")
        t = self.targets[target]
        return slo.measure.promql.format(selector=t.selector, window=window, **t.metrics)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def load_catalogue(path: Path | str = DEFAULT_SLO_FILE) -> Catalogue:
    """Load and validate an SLO file; :class:`SloFileError` names the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SloFileError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SloFileError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _field_path(data, err["loc"])
            problems.append(f"{where}: {err['msg']}")
        raise SloFileError(f"{path}: " + "; ".join(problems[:5])) from None


def _field_path(data: object, loc: tuple[int | str, ...]) -> str:
    """``slos[3] (id=latency_p95).objective.value`` — indices plus the id of the item, for humans."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            try:
                node = node[part]  # type: ignore[index]
                if isinstance(node, dict) and "id" in node:
                    out += f" (id={node['id']})"
            except (IndexError, KeyError, TypeError):
                node = None
        elif part in ("PromQuery", "ProbeMeasure") or re.fullmatch(r"[a-z_]+\[.*\]", str(part)):
            continue  # pydantic's union branch names are noise to a user
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "<root>"


def render_markdown(cat: Catalogue) -> str:
    """``docs/slo.md``: the catalogue as tables a person reads."""
    lines = ["# SLO catalogue", "",
             "Generated from `docs/slo.yaml` by `python -m probes.slo render > docs/slo.md`; edit the YAML.", "",
             f"Source: {cat.source}", "", "## Service-level objectives", "",
             f"Queries are shown for the `{next(iter(cat.targets))}` target; `$window` is the evaluation window.", "",
             "| id | objective | measured by | source |", "| --- | --- | --- | --- |"]
    for s in cat.slos:
        o = s.objective
        first_target = next(iter(cat.targets))
        measure = (f"`{cat.promql(s.id, first_target, window='$window')}`" if isinstance(s.measure, PromQuery)
                   else f"probe `{s.measure.probe}`")
        alert = f" ({s.alert} alert)" if s.alert else ""
        value = f"{o.value:g}"
        lines.append(f"| `{s.id}` | {s.title}{alert}: {o.comparison.value} {value} {o.unit} | "
                     f"{measure.replace('|', '&#124;')} | {s.source} |")
    notes = [s for s in cat.slos if s.notes]
    if notes:
        lines += ["", "Notes:", ""] + [f"- `{s.id}`: {s.notes}" for s in notes]
    lines += ["", "## Disaster-recovery and troubleshooting scenarios", "",
              "| id | scenario | RTO | RPO | SLOs judged | on the local stack | source |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for sc in cat.scenarios:
        rto = sc.rto.text if sc.rto else "—"
        rpo = sc.rpo.text if sc.rpo else "—"
        lines.append(f"| `{sc.id}` | {sc.title} | {rto} | {rpo} | {', '.join(sc.slos) or '—'} | "
                     f"{sc.local} | {sc.source} |")
    lines += ["", "## Metric names per target", ""]
    for tname, t in cat.targets.items():
        lines += [f"### `{tname}` — selector `{t.selector}`", "", "| logical name | metric |", "| --- | --- |"]
        lines += [f"| `{k}` | `{v}` |" for k, v in t.metrics.items()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("check", "render"):
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(args[1]) if len(args) > 1 else DEFAULT_SLO_FILE
    try:
        cat = load_catalogue(path)
    except SloFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args[0] == "render":
        sys.stdout.write(render_markdown(cat))
    else:
        print(f"{path}: {len(cat.slos)} SLOs, {len(cat.scenarios)} scenarios, targets {', '.join(cat.targets)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
