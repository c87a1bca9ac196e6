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
from stack.paths import REPO_ROOT
from target.settings import TargetSettings, resolve

logger = logging.getLogger(__name__)

__all__ = ["start_load", "stop_load", "warm_up"]


def _dirs(settings: TargetSettings) -> tuple[Path, Path]:
    load_dir = settings.load_dir or REPO_ROOT / "reports" / "adhoc" / settings.run_id / "load"
    return load_dir, settings.ledger_dir or load_dir / "ledger"


def start_load(shape: str = "steady", rate: float = 100.0, duration: float = 120.0, seed: int = 0,
               workers: int = 0, configuration: Configuration | None = None,
               secrets: Secrets | None = None) -> dict[str, Any]:
    """Start SQL-event load into Kafka in the background; it stops by itself after ``duration``.

    Args:
        shape: steady, ramp, spike (a surge, for the consumer-lag scenario) or soak.
        rate: base rate in events per second.
        duration: seconds of load.
        seed: seed of the event content (same seed, same events).
        workers: 0 for one Locust process; N for distributed mode with N workers.

    Returns:
        The load's handle (pid, run directory, ledger directory, spec).

    Raises:
        ActivityFailed: a bad argument, Kafka unreachable or the topic missing (before any load
            starts), or Locust exiting at once.
    """
    settings = resolve(configuration)
    load_dir, ledger = _dirs(settings)
    try:
        handle = _start(settings, shape=shape, rate=float(rate), duration=float(duration), seed=int(seed),
                        workers=int(workers), run_dir=str(load_dir), ledger_dir=str(ledger))
    except (LoadConfigError, RuntimeError, ValueError) as exc:
        raise ActivityFailed(f"start load: {exc}") from None
    return handle.as_dict()


def warm_up(settings: TargetSettings, rate: float, duration_s: float, run_dir: Path) -> dict[str, Any]:
    """Load the service as a run would (events and, where it has one, its read API) for ``duration_s`` seconds,
    without a ledger, and wait for the load to end: a JVM replica serves its first minute of load with code the
    JIT has not compiled yet, slower than its steady state, and a baseline measured then says "not healthy
    before the fault" of a healthy service. Returns what Locust counted (requests, failures).

    Raises :class:`loadtests.config.LoadConfigError` or ``RuntimeError`` (Kafka unreachable, Locust failing)."""
    handle = _start(settings, shape="steady", rate=rate, duration=duration_s, seed=0, workers=0,
                    run_dir=str(run_dir), ledger_dir="")
    try:
        locust_process.wait_load(handle, timeout=duration_s + 60)
    finally:
        result = locust_process.stop_load(handle)  # a no-op once it has ended
    return {"exit_code": result.exit_code, "requests": int(result.stats.get("requests", 0)),
            "failures": int(result.stats.get("failures", 0)), "duration_s": duration_s}


def _start(settings: TargetSettings, **load: Any) -> locust_process.LoadHandle:
    urls, secret = _read_api(settings)
    options: dict[str, Any] = {"event_format": settings.contract.event_format}
    if urls:
        options["api_urls"] = ",".join(urls)
    return locust_process.start_load(settings.require("kafka_bootstrap", "start load"), topic=settings.contract.topic,
                                     options=options, auth=settings.kafka_auth(), api_jwt_secret=secret, **load)


def _read_api(settings: TargetSettings) -> tuple[list[str], str | None]:
    """The read API's base URLs and token key, or ``([], None)`` when the service has no API to load."""
    urls = list(settings.api_urls)
    if not urls and settings.has_read_api and settings.is_local:
        urls = settings.replica_base_urls("the read API load")
    if not urls:
        return [], None
    return urls, settings.api_token_key(f"start load: api_urls {urls} (from {settings.source('api_urls')})")


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
