"""What a probe reads: the target's endpoints and names (from :mod:`target.settings`) and its SLO catalogue.

A thin, typed view of :class:`target.settings.TargetSettings` for the probes: the endpoints a
probe cannot work without are required here, so a missing one is an error naming the key before
any query is sent. Every key, its environment variable and default: ``target/settings.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from probes import prom
from probes.slo import DEFAULT_SLO_FILE, Catalogue, MetricView, SloFileError, load_catalogue
from target.settings import TargetSettings, resolve

__all__ = ["ProbeEndpoints", "metric_view"]


def metric_view(settings: TargetSettings, catalogue: Catalogue) -> MetricView:
    """The metric view of ``settings``: the catalogue's defaults for its target and ``service``, the
    ``metric_profiles`` and ``metric_selector`` keys over them, and the names (consumer group, namespace...)
    from the settings.

    Raises:
        ActivityFailed: an unknown metric profile (naming the key and where it came from).
    """
    k8s = settings.kubernetes_keys
    labels = {"consumer_group": settings.consumer_group, "topic": settings.topic}
    if k8s.get("k8s_namespace"):
        labels["namespace"] = str(k8s["k8s_namespace"])
    if k8s.get("k8s_service_statefulset"):
        labels["statefulset"] = str(k8s["k8s_service_statefulset"])
    try:
        return catalogue.view(settings.target, settings.metric_profiles or None, settings.metric_selector, labels,
                              service=settings.service)
    except KeyError as exc:
        raise ActivityFailed(f"metric_profiles={list(settings.metric_profiles)} (from "
                             f"{settings.source('metric_profiles')}), service={settings.service!r} (from "
                             f"{settings.source('service')}): {exc.args[0]}") from None


@dataclass(frozen=True)
class ProbeEndpoints:
    """Where the probes of one activity find Prometheus, Kafka and ClickHouse, and what they judge by."""

    settings: TargetSettings
    prometheus_url: str
    kafka_bootstrap: str
    clickhouse_host: str
    clickhouse_port: int

    @classmethod
    def from_configuration(cls, configuration: dict[str, Any] | None, what: str = "probe") -> ProbeEndpoints:
        """Resolve the settings; :class:`target.settings.SettingsError` names a missing or bad key."""
        s = resolve(configuration)
        prom.use_auth(s.require("prometheus_url", what), s.prometheus_auth())
        return cls(settings=s, prometheus_url=s.require("prometheus_url", what),
                   kafka_bootstrap=s.require("kafka_bootstrap", what),
                   clickhouse_host=s.require("clickhouse_host", what),
                   clickhouse_port=int(s.require("clickhouse_port", what)))

    @property
    def target(self) -> str:
        return self.settings.target

    @property
    def consumer_group(self) -> str:
        return self.settings.consumer_group

    @property
    def topic(self) -> str:
        return self.settings.topic

    @property
    def expected_replicas(self) -> int:
        return self.settings.expected_replicas

    @property
    def run_id(self) -> str:
        return self.settings.run_id

    @property
    def ledger_dir(self) -> Path | None:
        return self.settings.ledger_dir

    def view(self) -> MetricView:
        """How this target's metrics are read (:func:`metric_view`)."""
        return metric_view(self.settings, self.catalogue())

    def catalogue(self) -> Catalogue:
        """The SLO catalogue (``slo_file``, default ``docs/slo.yaml``); ``ActivityFailed`` naming the file."""
        try:
            return load_catalogue(self.settings.slo_file or DEFAULT_SLO_FILE)
        except SloFileError as exc:
            raise ActivityFailed(str(exc)) from None
