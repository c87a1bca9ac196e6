"""The alert catalogue (``docs/alerts.yaml``): schema, loading and rendering to a Prometheus rules file.

Every alert the operations guide names, with its threshold (the guide's, or ours and marked so), written
over the measures of the SLO catalogue so that one catalogue gives the rules of every target: the
rendering fills each ``{measure}`` with its query under the target's metric view. The local stack's
Prometheus evaluates the ``local`` rendering (``deploy/local/alert-rules.yaml``), and the judge reads
the ``ALERTS`` series it produces (``resilience/alerting.py``).

    python -m probes.alerts check [--alerts FILE] [--slo-file FILE]
    python -m probes.alerts render [--target local|kubernetes] [--profiles a,b] [--alerts FILE] [--slo-file FILE]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from probes.slo import (
    DEFAULT_SLO_FILE,
    Catalogue,
    MeasureUndefined,
    MetricView,
    SloFileError,
    load_catalogue,
    placeholders,
    read_yaml,
)

__all__ = ["DEFAULT_ALERTS_FILE", "LOCAL_RULES_FILE", "Alert", "AlertCatalogue", "AlertFileError", "Rendering",
           "load_alerts", "render"]

DEFAULT_ALERTS_FILE = Path(__file__).resolve().parent.parent / "docs" / "alerts.yaml"
#: The ``local`` rendering, loaded by the local stack's Prometheus (``stack/components/prometheus.py``).
LOCAL_RULES_FILE = Path(__file__).resolve().parent.parent / "deploy" / "local" / "alert-rules.yaml"

_DURATION = r"^[0-9]+(ms|s|m|h)$"


class AlertFileError(ValueError):
    """The alert file cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Alert(_Strict):
    """One alert: a PromQL condition over measures, how long it must hold, and where its number comes from."""

    alert: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    section: str = Field(min_length=3, description="Section of the guide that names the alert.")
    severity: Literal["warning", "critical"]
    expr: str = Field(min_length=3, description="PromQL; {measure} is a measure of the SLO catalogue.")
    window: str = Field(default="1m", pattern=_DURATION, description="rate window of the measures ({window})")
    for_: str = Field(alias="for", pattern=_DURATION)
    threshold: Literal["guide", "ours"]
    summary: str = Field(min_length=3)
    why: str = Field(min_length=3, description="Where the number comes from.")

    def measures(self) -> set[str]:
        return placeholders(self.expr)


class Watchdog(_Strict):
    alert: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    summary: str


class AlertCatalogue(_Strict):
    version: Literal[1]
    source: str
    alerts: list[Alert] = Field(min_length=1)
    watchdog: Watchdog

    @model_validator(mode="after")
    def _unique(self) -> AlertCatalogue:
        names = [a.alert for a in self.alerts] + [self.watchdog.alert]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate alert names: {dupes}")
        return self

    def names(self) -> list[str]:
        return [a.alert for a in self.alerts]

    def check_measures(self, cat: Catalogue) -> None:
        """Every ``{name}`` of every expression is a measure of ``cat``.

        Raises:
            AlertFileError: naming the alert and the unknown names.
        """
        known = set(cat.measures) | set(cat.optional_measures)
        for i, a in enumerate(self.alerts):
            unknown = sorted(a.measures() - known)
            if unknown:
                raise AlertFileError(f"alerts[{i}] (alert={a.alert}).expr uses {unknown}, which are not measures "
                                     f"of the SLO catalogue")


@dataclass(frozen=True)
class Rendering:
    """A rules file for one metric view: its YAML text, the alerts in it, those left out and why."""

    text: str
    rendered: list[str]
    left_out: dict[str, str]


def load_alerts(path: Path | str = DEFAULT_ALERTS_FILE, catalogue: Catalogue | None = None) -> AlertCatalogue:
    """Load and validate an alert file (and, given the SLO catalogue, its measures).

    Raises:
        AlertFileError: naming the file and the field.
    """
    path = Path(path)
    data = read_yaml(path, AlertFileError)
    try:
        alerts = AlertCatalogue.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_where(data, err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise AlertFileError(f"{path}: " + "; ".join(problems[:5])) from None
    if catalogue is not None:
        try:
            alerts.check_measures(catalogue)
        except AlertFileError as exc:
            raise AlertFileError(f"{path}: {exc}") from None
    return alerts


def _where(data: Any, loc: tuple[int | str, ...]) -> str:
    """``alerts[3] (alert=SlowChecker).for`` for humans."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and "alert" in node:
                out += f" (alert={node['alert']})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "<root>"


def expression(alert: Alert, cat: Catalogue, view: MetricView) -> str:
    """The alert's PromQL under ``view``, each measure's query in parentheses (``a or vector(0) == 0`` would
    otherwise compare only the ``vector(0)``).

    Raises:
        MeasureUndefined: a measure no profile of the view defines.
    """
    queries = {m: f"({cat.query(m, view, window=alert.window)})" for m in alert.measures()}
    return alert.expr.format(**queries)


def render(alerts: AlertCatalogue, cat: Catalogue, view: MetricView, *, title: str) -> Rendering:
    """The Prometheus rules file of ``alerts`` under ``view``: one group, the watchdog first.

    Labels: ``severity``, ``threshold`` (guide or ours). Annotations: ``summary``, ``section``, ``why``; static
    text (no templates), so ``promtool test rules`` can compare them exactly.
    """
    rules: list[dict[str, Any]] = [{
        "alert": alerts.watchdog.alert, "expr": "vector(1)",
        "labels": {"severity": "none", "threshold": "ours"},
        "annotations": {"summary": alerts.watchdog.summary,
                        "why": "A dead man's switch: its ALERTS series proves the rules are evaluated."}}]
    rendered, left_out = [], {}
    for a in alerts.alerts:
        try:
            expr = expression(a, cat, view)
        except MeasureUndefined as exc:
            left_out[a.alert] = str(exc)
            continue
        rule: dict[str, Any] = {"alert": a.alert, "expr": expr}
        if a.for_ not in ("0s", "0m", "0ms"):
            rule["for"] = a.for_
        rule["labels"] = {"severity": a.severity, "threshold": a.threshold}
        rule["annotations"] = {"summary": a.summary, "section": a.section, "why": " ".join(a.why.split())}
        rules.append(rule)
        rendered.append(a.alert)
    header = [f"# Generated by `python -m probes.alerts render {title}` from docs/alerts.yaml; do not edit.",
              f"# Metric view: profiles {', '.join(view.profiles)}; selector {view.selector}",
              f"# {len(rendered)} of {len(alerts.alerts)} alerts of the guide, and the {alerts.watchdog.alert}."]
    header += [f"# Left out, {name}: {why}" for name, why in left_out.items()]
    body = yaml.safe_dump({"groups": [{"name": "sql-audit-service", "rules": rules}]}, sort_keys=False, width=120,
                          allow_unicode=True)
    return Rendering("\n".join(header) + "\n" + body, rendered, left_out)


def view_for(cat: Catalogue, target: str, profiles: str | None) -> MetricView:
    """The metric view of ``target``, its profile chain replaced by ``profiles`` (comma separated) if given."""
    chain = [p.strip() for p in profiles.split(",") if p.strip()] if profiles else None
    return cat.view(target, profiles=chain)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m probes.alerts", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "render"])
    parser.add_argument("--alerts", type=Path, default=DEFAULT_ALERTS_FILE, help="alert file (docs/alerts.yaml)")
    parser.add_argument("--slo-file", type=Path, default=DEFAULT_SLO_FILE, help="SLO catalogue (docs/slo.yaml)")
    parser.add_argument("--target", default="local", help="target whose metric view fills the measures")
    parser.add_argument("--profiles", default=None, help="metric profiles instead of the target's, comma separated")
    args = parser.parse_args(argv)
    try:
        cat = load_catalogue(args.slo_file)
        alerts = load_alerts(args.alerts, cat)
        view = view_for(cat, args.target, args.profiles)
    except (SloFileError, AlertFileError, KeyError) as exc:
        print(f"error: {str(exc).strip(chr(34))}", file=sys.stderr)
        return 2
    title = f"--target {args.target}" + (f" --profiles {args.profiles}" if args.profiles else "")
    out = render(alerts, cat, view, title=title)
    if args.command == "render":
        sys.stdout.write(out.text)
    else:
        print(f"{args.alerts}: {len(alerts.alerts)} alerts; {title}: {len(out.rendered)} rendered"
              + (f", left out: {', '.join(out.left_out)}" if out.left_out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
