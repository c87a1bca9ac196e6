"""Where the probes find Prometheus, Kafka and ClickHouse, from Chaos Toolkit ``configuration``.

Keys (shared with the faults, see ``faults/settings.py``):

``target``            ``local`` (default) or ``kubernetes``.
``stack_port_base``   local target: the stack's port base (default env ``RESILIENCE_PORT_BASE``, else 19000).
``prometheus_url``    Prometheus base URL (local: derived from the stack).
``kafka_bootstrap``   Kafka bootstrap servers the probes read lag from (local: the stack's direct listener).
``clickhouse_host``, ``clickhouse_port``  ClickHouse native endpoint (local: the stack's, direct).
``consumer_group``, ``topic``  defaults ``sql-audit-service``, ``sql-audit-events``.
``slo_file``          SLO catalogue (default ``docs/slo.yaml``).
``expected_replicas`` replicas the service should run (default 3).
``run_id``            the run whose fault journal gives the fault's start.
``fault_state_dir``   where that journal lives (default as in ``faults/settings.py``).
``ledger_dir``        the load generator's ledger of acknowledged events.

Explicit keys always win over what the local stack implies, so a local experiment can
point a probe elsewhere, and a Kubernetes one must name every endpoint. Keys missing from an
experiment's configuration are also read from the file named by ``RESILIENCE_TARGET_CONFIG``
(``deploy/k8s/base/target.yaml`` in a cluster).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from probes.slo import DEFAULT_SLO_FILE, Catalogue, SloFileError, load_catalogue
from stack.endpoints import CONSUMER_GROUP, DEFAULT_PORT_BASE, TOPIC, Endpoints


@dataclass(frozen=True)
class ProbeSettings:
    target: str
    prometheus_url: str
    kafka_bootstrap: str
    clickhouse_host: str
    clickhouse_port: int
    consumer_group: str
    topic: str
    slo_file: Path
    expected_replicas: int
    run_id: str | None
    fault_state_dir: Path | None
    ledger_dir: Path | None
    stack_port_base: int | None = None  # local target only

    @classmethod
    def from_configuration(cls, configuration: dict[str, Any] | None) -> ProbeSettings:
        """Validate the keys; :class:`ActivityFailed` names the key that is missing or wrong."""
        from faults.settings import target_file_configuration

        cfg = {**target_file_configuration(), **(configuration or {})}
        target = str(cfg.get("target", "local")).lower()
        if target not in ("local", "kubernetes"):
            raise ActivityFailed(f"configuration target={target!r}: expected local or kubernetes")
        defaults: dict[str, Any] = {}
        base: int | None = None
        if target == "local":
            try:
                base = int(cfg.get("stack_port_base", os.environ.get("RESILIENCE_PORT_BASE", DEFAULT_PORT_BASE)))
            except ValueError:
                raise ActivityFailed(f"configuration stack_port_base={cfg.get('stack_port_base')!r}: "
                                     "expected an integer") from None
            ep = Endpoints(base)
            defaults = {"prometheus_url": ep.prometheus_url, "kafka_bootstrap": ep.kafka_bootstrap,
                        "clickhouse_host": ep.clickhouse_host, "clickhouse_port": ep.clickhouse_port}

        def need(key: str) -> Any:
            value = cfg.get(key, defaults.get(key))
            if value in (None, ""):
                raise ActivityFailed(f"configuration {key} is required for target {target}")
            return value

        prometheus_url, bootstrap, ch_host = need("prometheus_url"), need("kafka_bootstrap"), need("clickhouse_host")
        try:
            port = int(need("clickhouse_port"))
            replicas = int(cfg.get("expected_replicas", 3))
        except ValueError as exc:
            raise ActivityFailed(f"configuration: {exc}") from None
        state = cfg.get("fault_state_dir") or os.environ.get("RESILIENCE_STATE_DIR")
        ledger = cfg.get("ledger_dir") or os.environ.get("RESILIENCE_LEDGER_DIR")
        return cls(target=target, prometheus_url=str(prometheus_url).rstrip("/"),
                   kafka_bootstrap=str(bootstrap), clickhouse_host=str(ch_host),
                   clickhouse_port=port, consumer_group=str(cfg.get("consumer_group", CONSUMER_GROUP)),
                   topic=str(cfg.get("topic", TOPIC)), slo_file=Path(cfg.get("slo_file", DEFAULT_SLO_FILE)),
                   expected_replicas=replicas,
                   run_id=str(cfg.get("run_id") or os.environ.get("RESILIENCE_RUN_ID") or "") or None,
                   fault_state_dir=Path(state) if state else None, ledger_dir=Path(ledger) if ledger else None,
                   stack_port_base=base)

    def catalogue(self) -> Catalogue:
        try:
            return load_catalogue(self.slo_file)
        except SloFileError as exc:
            raise ActivityFailed(str(exc)) from None
