"""Local backend of :mod:`faults.zookeeper_loss`: the ``zookeeper`` program stopped under supervisord.

The fault is proven to bite before it returns: the ClickHouse replicas are polled (``system.replicas``,
direct ports) until one reports its replicated table read-only; if none does within
:data:`READONLY_TIMEOUT_S`, the engine undoes the stop and the activity fails. The restore waits for the
opposite: every replica writable again, which is when the service's inserts can succeed.
"""

import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.wait import wait_until
from faults.local import _ha, local_stack
from faults.local.processes import start_again, stop_for
from stack.components import clickhouse
from target.settings import TargetSettings, resolve

PROGRAM = "zookeeper"
READONLY_TIMEOUT_S = 60.0
RESTORE_TIMEOUT_S = 120.0


def readonly_replicas(settings: TargetSettings) -> dict[str, Any]:
    """Each ClickHouse replica's ``is_readonly`` (1/0), or the error that kept it from answering."""
    ctx = local_stack(settings).ctx
    states: dict[str, Any] = {}
    for rep in clickhouse.CH_REPLICAS:
        try:
            states[rep.replica] = int(clickhouse.clickhouse_replica_status(ctx, rep, timeout=5.0)["is_readonly"])
        except Exception as exc:  # a replica that does not answer is reported, not fatal
            states[rep.replica] = f"{type(exc).__name__}: {str(exc)[:120]}"
    return states


def lose_zookeeper(duration: float | None = None, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.zookeeper_loss.lose_zookeeper`."""
    settings = resolve(configuration)
    what = "ZooKeeper loss"
    _ha.require_ha(settings, what, "replicated ClickHouse on ZooKeeper; minimal has no ZooKeeper")
    result = stop_for(settings, PROGRAM, what)
    if settings.dry_run:
        return result
    t0 = time.time()
    seen: dict[str, Any] = {}

    def bitten() -> dict[str, Any] | None:
        seen.update(readonly_replicas(settings))
        return dict(seen) if any(v == 1 for v in seen.values()) else None

    states = wait_until(bitten, READONLY_TIMEOUT_S, 0.5,
                        lambda: f"{what}: ZooKeeper stopped but no ClickHouse replica reported its table read-only "
                                f"within {READONLY_TIMEOUT_S:.0f} s ({seen}): the fault did not bite",
                        error=ActivityFailed)
    return {**result, "stopped_at": t0, "readonly_after_s": round(time.time() - t0, 2), "replicas": states}


def restore_zookeeper(configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.zookeeper_loss.restore_zookeeper`."""
    settings = resolve(configuration)
    what = "restore ZooKeeper"
    if local_stack(settings).ctx.profile != "ha":
        return {"changed": "not the ha profile: no ZooKeeper to restore", "would": "nothing"}
    result = start_again(settings, PROGRAM, what, RESTORE_TIMEOUT_S)
    if settings.dry_run or result["changed"].startswith("stack not running"):
        return result
    t0 = time.monotonic()
    seen: dict[str, Any] = {}

    def writable() -> dict[str, Any] | None:
        seen.clear()
        seen.update(readonly_replicas(settings))
        return dict(seen) if all(v == 0 for v in seen.values()) else None

    states = wait_until(writable, RESTORE_TIMEOUT_S, 0.5,
                        lambda: f"{what}: ClickHouse replicas not writable within {RESTORE_TIMEOUT_S:.0f} s of "
                                f"ZooKeeper's start: {seen}", error=ActivityFailed)
    return {**result, "replicas": states, "readonly_cleared_s": round(time.monotonic() - t0, 2),
            "changed": f"{result['changed']}; every ClickHouse replica writable"}
