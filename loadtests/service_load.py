"""The service's load as a run gives it, from the target's settings: the events into its topic in its format and
with its Kafka login, and its read API (with a token) where it has one. The Chaos Toolkit actions
(:mod:`loadtests.activities`) and the runner's warm-up of JVM replicas both start load through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests import locust_process
from loadtests.config import check_mix
from target.settings import TargetSettings

__all__ = ["start_for", "warm_up"]


def start_for(settings: TargetSettings, mix: dict[str, Any] | None = None, **load: Any) -> locust_process.LoadHandle:
    """:func:`loadtests.locust_process.start_load` with the target's topic, event format, Kafka login and read API;
    ``mix``: the experiment's generator shares (:func:`loadtests.config.check_mix`); ``load``: the remaining
    arguments (shape, rate, duration, seed, workers, run_dir, ledger_dir)."""
    urls, secret = _read_api(settings)
    options: dict[str, Any] = {"event_format": settings.contract.event_format, **check_mix(mix)}
    if urls:
        options["api_urls"] = ",".join(urls)
    return locust_process.start_load(settings.require("kafka_bootstrap", "start load"), topic=settings.contract.topic,
                                     options=options, auth=settings.kafka_auth(), api_jwt_secret=secret, **load)


def warm_up(settings: TargetSettings, rate: float, duration_s: float, run_dir: Path) -> dict[str, Any]:
    """Load the service as a run would (events and, where it has one, its read API) for ``duration_s`` seconds,
    without a ledger, and wait for the load to end: a JVM replica serves its first minute of load with code the
    JIT has not compiled yet, slower than its steady state, and a baseline measured then says "not healthy
    before the fault" of a healthy service. Returns what Locust counted (requests, failures).

    Raises :class:`loadtests.config.LoadConfigError`, ``RuntimeError`` (Kafka unreachable, Locust failing) or
    ``ActivityFailed`` (no token key for the read API)."""
    handle = start_for(settings, shape="steady", rate=rate, duration=duration_s, seed=0, workers=0,
                       run_dir=str(run_dir), ledger_dir="")
    try:
        locust_process.wait_load(handle, timeout=duration_s + 60)
    finally:
        result = locust_process.stop_load(handle)  # a no-op once it has ended
    return {"exit_code": result.exit_code, "requests": int(result.stats.get("requests", 0)),
            "failures": int(result.stats.get("failures", 0)), "duration_s": duration_s}


def _read_api(settings: TargetSettings) -> tuple[list[str], str | None]:
    """The read API's base URLs and token key, or ``([], None)`` when the service has no API to load."""
    urls = settings.read_api_urls("the read API load")
    if not urls:
        return [], None
    return urls, settings.api_token_key(f"start load: api_urls {urls} (from {settings.source('api_urls')})")
