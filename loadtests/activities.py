"""Chaos Toolkit actions that start and stop the SQL-event load of an experiment.

The load runs as a Locust subprocess (see ``loadtests/locust_process.py``) that stops by
itself after its duration, so a killed runner never leaves load running for long.
Where it writes and which Kafka it targets come from ``configuration``:

``kafka_bootstrap``  where the events go (local: the stack's direct listener; required on kubernetes);
``load_dir``         run directory of the load (load.json, locust.log, stats CSV), default
                     ``reports/adhoc/<run_id>/load``;
``ledger_dir``       where the ledger goes, default ``<load_dir>/ledger``;
``api_urls``         the service's read API, also loaded when the service has one (local with the spring
                     service: the replicas; the token key from ``RESILIENCE_API_JWT_SECRET`` or the stack).

(the settings model, ``target/settings.py``, resolves them from the configuration, the target
file and the ``RESILIENCE_*`` environment).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from loadtests import locust_process
from loadtests.config import LoadConfigError
from loadtests.service_load import start_for
from stack.paths import REPO_ROOT
from target.settings import TargetSettings, resolve

logger = logging.getLogger(__name__)

__all__ = ["start_load", "stop_load"]


def _dirs(settings: TargetSettings) -> tuple[Path, Path]:
    load_dir = settings.load_dir or REPO_ROOT / "reports" / "adhoc" / settings.run_id / "load"
    return load_dir, settings.ledger_dir or load_dir / "ledger"


def start_load(shape: str = "steady", rate: float = 100.0, duration: float = 120.0, seed: int = 0,
               workers: int = 0, mix: dict[str, float] | None = None, configuration: Configuration | None = None,
               secrets: Secrets | None = None) -> dict[str, Any]:
    """Start SQL-event load into Kafka in the background; it stops by itself after ``duration``.

    Args:
        shape: steady, ramp, spike (a surge, for the consumer-lag scenario) or soak.
        rate: base rate in events per second.
        duration: seconds of load.
        seed: seed of the event content (same seed, same events).
        workers: 0 for one Locust process; N for distributed mode with N workers.
        mix: shares of the events each checker flags, over the generator's defaults
            (:data:`loadtests.config.MIX_KNOBS`; e.g. ``{slow_fraction: 0.1}`` for a violation every
            0.2 s at 50 events/s). The runner checks it when it loads the experiment.

    Returns:
        The load's handle (pid, run directory, ledger directory, spec).

    Raises:
        ActivityFailed: a bad argument, Kafka unreachable or the topic missing (before any load
            starts), or Locust exiting at once.
    """
    settings = resolve(configuration)
    load_dir, ledger = _dirs(settings)
    try:
        handle = start_for(settings, shape=shape, rate=float(rate), duration=float(duration), seed=int(seed),
                           workers=int(workers), run_dir=str(load_dir), ledger_dir=str(ledger), mix=mix)
    except (LoadConfigError, RuntimeError, ValueError) as exc:
        raise ActivityFailed(f"start load: {exc}") from None
    return handle.as_dict()


def stop_load(configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Stop the experiment's load gracefully (idempotent: a finished load just reports its result).

    Returns:
        The load's result: exit code, acknowledged and failed counts, request statistics.
    """
    load_dir, _ = _dirs(resolve(configuration))
    if not (load_dir / locust_process.HANDLE_FILE).exists():
        return {"stopped": False, "reason": f"no load was started in {load_dir}"}
    result = locust_process.stop_load(str(load_dir))
    return {"stopped": True, **result.as_dict()}
