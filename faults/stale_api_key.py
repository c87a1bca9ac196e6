"""A stale API key: clients that missed a key rotation keep calling the read API with tokens the service refuses.

``send_stale_tokens`` asks the service's read API at ``rate`` requests per second for ``duration`` seconds with
well-formed tokens signed by a key it does not hold (:mod:`faults.stale_tokens`, every answer listed in
``<load_dir>/stale_tokens.jsonl``), beside the run's own load and its good tokens. Judged by
``stale_tokens_served`` (every answered request a 401: none served, none a 5xx), the ``High4xxErrorRate`` alert,
and the pipeline keeping its data flow. Nothing on the target changes: ``stop_stale_tokens`` has nothing to
undo and only closes the fault window. Both targets send plain HTTP to the target's ``api_urls`` (local: the
replicas of a service with the read API, the Spring one).
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["send_stale_tokens", "stop_stale_tokens"]

MAX_RATE = 200.0
"""Requests per second at most: a client population's refusals, not a load test of the API."""


def send_stale_tokens(rate: float = 10.0, duration: float = 90.0, configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Ask the read API with tokens signed by a key the service does not hold; blocks for ``duration`` seconds.

    Returns ``fault_id``, ``run_id``, ``journal`` and ``details`` (sent, answered, by status, served, server
    errors, the file listing every answer); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: a rate not within (0, 200] or a duration not above 0, a service without a read API
            (nothing sent), or not one request answered.
    """
    fault = "send_stale_tokens"
    rate = check.number(fault, "rate", rate)
    if not 0 < rate <= MAX_RATE:
        raise ActivityFailed(f"{fault}: rate={rate!r}: expected requests per second within (0, {MAX_RATE:g}]")
    seconds = check.duration(fault, duration)
    if seconds is None:
        raise ActivityFailed(f"{fault}: duration={duration!r}: expected seconds > 0 (how long the clients call)")
    return engine.inject(__name__, "send_stale_tokens", {"rate": rate, "duration": seconds}, "stop_stale_tokens",
                         {}, None, configuration, secrets, instant=False)


def stop_stale_tokens(configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Close the stale-token fault's window; idempotent. Nothing on the target changed (nothing to undo).

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: the journal could not be updated.
    """
    return engine.remove(__name__, "stop_stale_tokens", {}, configuration, secrets)
