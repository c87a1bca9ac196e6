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
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_SLO_FILE = Path(__file__).resolve().parent.parent / "docs" / "slo.yaml"

__all__ = ["DEFAULT_SLO_FILE", "Catalogue", "MeasureUndefined", "MetricView", "SloFileError", "load_catalogue"]


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
    """A PromQL expression; ``{measure}`` placeholders are measures (their query under the run's
    metric view), ``{window}`` the evaluation window."""

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


class Profile(_Strict):
    """A metric profile: the full PromQL of each measure, in the names one kind of service or platform exports."""

    description: str = ""
    measures: dict[str, str]


class Target(_Strict):
    """The default metric view of one target kind: its chain of profiles and its label selector."""

    profiles: list[str] = Field(min_length=1, description="The chain of the default service (python).")
    services: dict[str, list[str]] = Field(default_factory=dict, description="Another service's chain of "
                                           "profiles on this target (spring: its Micrometer names).")
    selector: str = Field(description="Label matchers selecting the audit service; may use {namespace} etc.")
    labels: dict[str, str] = Field(default_factory=dict, description="Placeholder values of this target "
                                   "(namespace, statefulset...); the settings' own win over them.")


#: Placeholders a measure or a selector may use besides {selector} and {window}, and their defaults.
LABEL_DEFAULTS = {"consumer_group": "sql-audit-service", "topic": "sql-audit-events", "namespace": "sql-audit",
                  "statefulset": "sql-audit-service"}


@dataclass(frozen=True)
class MetricView:
    """How one run reads metrics: a chain of profiles (the first that defines a measure wins), the label
    selector of the service and the values of the other placeholders (``consumer_group``...)."""

    profiles: tuple[str, ...]
    selector: str
    labels: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"profiles": list(self.profiles), "selector": self.selector, "labels": dict(self.labels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricView:
        labels = tuple(sorted(dict(data.get("labels") or {}).items()))
        return cls(tuple(data["profiles"]), str(data["selector"]), labels)


class Catalogue(_Strict):
    version: Literal[2]
    source: str
    measures: dict[str, str] = Field(description="Logical measures and what each means.")
    optional_measures: dict[str, str] = Field(
        default_factory=dict, description="Measures some services do not export (a JVM's heap, a read API...): a "
                                          "target need not define them; reading one where no profile does is "
                                          "'undefined', and an SLO over one is not applicable there (never judged).")
    profiles: dict[str, Profile]
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
        both = sorted(set(self.measures) & set(self.optional_measures))
        if both:
            raise ValueError(f"measures {both} are both required and optional")
        for sc in self.scenarios:
            unknown = [s for s in sc.slos if s not in known]
            if unknown:
                raise ValueError(f"scenario {sc.id!r} names unknown SLOs {unknown}")
        for pname, profile in self.profiles.items():
            unknown = sorted(set(profile.measures) - set(self.measures) - set(self.optional_measures))
            if unknown:
                raise ValueError(f"profile {pname!r} defines unknown measures {unknown}; "
                                 f"measures: {sorted([*self.measures, *self.optional_measures])}")
        for slo in self.slos:
            if isinstance(slo.measure, PromQuery):
                unknown = sorted(placeholders(slo.measure.promql) - set(self.measures) - set(self.optional_measures)
                                 - {"window"})
                if unknown:
                    raise ValueError(f"SLO {slo.id!r} uses {unknown}, which are not measures")
        for tname, target in self.targets.items():
            chains = {"": target.profiles, **{f" service {s!r}": c for s, c in target.services.items()}}
            for what, chain in chains.items():
                missing = [p for p in chain if p not in self.profiles]
                if missing:
                    raise ValueError(f"target {tname!r}{what} names unknown profiles {missing}")
                defined = {m for p in chain for m in self.profiles[p].measures}
                undefined = sorted(set(self.measures) - defined)
                if undefined:
                    raise ValueError(f"target {tname!r}{what} does not define measures {undefined} (profiles {chain})")
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

    def view(self, target: str, profiles: list[str] | tuple[str, ...] | None = None, selector: str | None = None,
             labels: dict[str, str] | None = None, service: str | None = None) -> MetricView:
        """The metric view of ``target`` (a key of ``targets``) for ``service`` (default: the target's own
        chain, the Python reference service's), with the user's overrides (``profiles`` win over ``service``).

        Raises:
            KeyError: unknown target, service or profile (the message lists the known ones).
        """
        if target not in self.targets:
            raise KeyError(f"no target {target!r} in the SLO catalogue; targets: {', '.join(self.targets)}")
        t = self.targets[target]
        if service not in (None, "python") and service not in t.services:
            raise KeyError(f"target {target!r} has no metric profiles for service {service!r}; services: "
                           f"{', '.join(['python', *t.services])}")
        default_chain = t.services.get(service, t.profiles) if service else t.profiles
        chain = tuple(profiles or default_chain)
        unknown = [p for p in chain if p not in self.profiles]
        if unknown:
            raise KeyError(f"unknown metric profiles {unknown}; profiles: {', '.join(self.profiles)}")
        values = {**LABEL_DEFAULTS, **t.labels, **(labels or {})}
        return MetricView(chain, (selector or t.selector).format(**values), tuple(sorted(values.items())))

    def measure_template(self, measure: str, view: MetricView) -> tuple[str, str] | None:
        """``(profile, template)`` of the first profile of ``view`` that defines ``measure``, else ``None``."""
        for name in view.profiles:
            template = self.profiles[name].measures.get(measure)
            if template is not None:
                return name, template
        return None

    def applicable(self, slo_id: str, view: MetricView) -> bool:
        """False when the SLO reads an optional measure that no profile of ``view`` defines (a service
        without a read API has no API availability to judge)."""
        slo = self.slo(slo_id)
        if not isinstance(slo.measure, PromQuery):
            return True
        return all(self.measure_template(m, view) is not None
                   for m in placeholders(slo.measure.promql) & set(self.optional_measures))

    def query(self, measure: str, view: MetricView, window: str = "1m") -> str:
        """The full PromQL of ``measure`` under ``view``.

        Raises:
            MeasureUndefined: no profile of the view defines it.
        """
        if measure not in self.measures and measure not in self.optional_measures:
            raise KeyError(f"no measure {measure!r}; measures: {', '.join([*self.measures, *self.optional_measures])}")
        found = self.measure_template(measure, view)
        if found is None:
            raise MeasureUndefined(f"no metric profile of {list(view.profiles)} defines measure {measure!r}: "
                                   f"add it to a profile in the SLO file, or choose profiles that do")
        return found[1].format(selector=view.selector, window=window, **dict(view.labels))

    def promql(self, slo_id: str, view: MetricView, window: str = "1m") -> str:
        """The SLO's query, its measures filled in from ``view``."""
        slo = self.slo(slo_id)
        if not isinstance(slo.measure, PromQuery):
            raise ValueError(f"SLO {slo_id!r} is measured by probe {slo.measure.probe!r}, not PromQL")
        names = placeholders(slo.measure.promql) - {"window"}
        return slo.measure.promql.format(window=window, **{m: self.query(m, view, window) for m in names})


class MeasureUndefined(KeyError):
    """The chosen metric profiles define no query for a measure: nothing can be measured."""

    def __str__(self) -> str:
        return str(self.args[0])


def placeholders(template: str) -> set[str]:
    """The ``{name}`` placeholders of a template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """The YAML document of ``path``; ``error`` (the file kind's own error) names the file when it cannot be
    read or parsed."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def load_catalogue(path: Path | str = DEFAULT_SLO_FILE) -> Catalogue:
    """Load and validate an SLO file; :class:`SloFileError` names the file and the field."""
    path = Path(path)
    data = read_yaml(path, SloFileError)
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


def _display(template: str) -> str:
    """A measure's template as a person reads it: placeholders as ``$name``, no doubled braces."""
    return template.format(selector="$selector", window="$window", **{k: f"${k}" for k in LABEL_DEFAULTS})


def render_markdown(cat: Catalogue) -> str:
    """``docs/slo.md``: the catalogue as tables a person reads."""
    lines = ["# SLO catalogue", "",
             "Generated from `docs/slo.yaml` by `python -m probes.slo render > docs/slo.md`; edit the YAML.", "",
             f"Source: {cat.source}", "", "## Service-level objectives", "",
             "An SLO's query is written over *measures* (`{measure}`); each target's metric profiles give "
             "the measure's PromQL (below). `$window` is the evaluation window.", "",
             "| id | objective | measured by | source |", "| --- | --- | --- | --- |"]
    for s in cat.slos:
        o = s.objective
        measure = (f"`{s.measure.promql.replace('{window}', '$window')}`" if isinstance(s.measure, PromQuery)
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
    lines += ["", "## Measures and metric profiles", "",
              "A target reads each measure from the first of its profiles that defines it.", "",
              "| target | profiles | selector |", "| --- | --- | --- |"]
    lines += [f"| `{n}` | {', '.join(f'`{p}`' for p in t.profiles)} | `{t.selector}` |" for n, t in cat.targets.items()]
    lines += ["", "| measure | meaning | " + " | ".join(f"`{p}`" for p in cat.profiles) + " |",
              "| --- | --- | " + " | ".join("---" for _ in cat.profiles) + " |"]
    rows = [*cat.measures.items(), *((m, f"(optional) {meaning}") for m, meaning in cat.optional_measures.items())]
    for m, meaning in rows:
        cells = [f"`{_display(pr.measures[m])}`".replace("|", "&#124;") if m in pr.measures else "—"
                 for pr in cat.profiles.values()]
        lines.append(f"| `{m}` | {meaning} | " + " | ".join(cells) + " |")
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
        print(f"{path}: {len(cat.slos)} SLOs, {len(cat.scenarios)} scenarios, {len(cat.measures)} measures, "
              f"profiles {', '.join(cat.profiles)}, targets {', '.join(cat.targets)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
