"""Scale the audit-service replicas of a running local stack, as an HPA (or ``kubectl scale``) scales a StatefulSet.

The guide's HorizontalPodAutoscaler keeps the service between 3 and 10 replicas; the local stack reserves
ports for 10 (:data:`stack.endpoints.MAX_REPLICAS`). :func:`scale` brings the group ``audit-service`` to
``to`` replicas while everything runs, the way a cluster would see it:

* **up**: each new ``audit-service-<i>`` is added to the running supervisor group (:mod:`stack.supervisor_rpc`;
  the other members are not restarted), started, and once its HTTP port answers it is given to the pod-state
  exporter (its replicas file: a new pod, not ready until its readiness probe passes) and to Prometheus
  (``prometheus.yml`` rewritten, ``/-/reload``); it joins the consumer group by itself, as a new pod does;
* **down**: the highest ordinals go first (a StatefulSet's order): out of the exporter and Prometheus, then
  stopped with their stop signal (the replica commits what is durable and leaves the group) and removed
  from the supervisor group.

``stack.json`` then says ``replicas: to`` (``status``, ``heal`` and a later ``up`` see the new count) and
keeps ``scaled_from``, the count before the first scale, until :func:`scale_back` returns to it (the
local twin of the ``sql-audit-resilience/replicas-before`` annotation on Kubernetes). The replicas keep
no data of their own (their working directory is the stack's); their log files stay in ``logs/``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clients.wait import wait_until
from stack import supervisor as sv
from stack.components import prometheus
from stack.components.audit_service import GROUP
from stack.components.base import Component
from stack.components.pod_state_exporter import replica_urls, replicas_file
from stack.endpoints import MAX_REPLICAS
from stack.errors import StackError
from stack.profiles import components_for
from stack.replicas_file import write_replicas_file

if TYPE_CHECKING:
    from stack.core import LocalStack

__all__ = ["ScaleResult", "scale", "scale_back", "scaled_from"]

logger = logging.getLogger(__name__)

TARGETS_TIMEOUT_S = 30.0
"""How long Prometheus may take to show the new set of targets after a reload (its discovery sends
updates at most every 5 s)."""


@dataclass(frozen=True)
class ScaleResult:
    """What a scale did: the count before and after, the programs added and removed."""

    before: int
    after: int
    added: list[str]
    removed: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def scaled_from(stack: LocalStack) -> int | None:
    """The replica count before the stack was first scaled, ``None`` when it is not scaled."""
    value = (stack._read_state() or {}).get("scaled_from")
    return int(value) if value is not None else None


def _update_state(stack: LocalStack, **changes: Any) -> None:
    state = stack._read_state() or {}
    for key, value in changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    path = stack._state_file()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def _index(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def _port_answers(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def _publish(stack: LocalStack, ctx: Any, comps: list[Component], replicas: list[Component]) -> None:
    """Tell the pod-state exporter and Prometheus the replicas are now ``replicas``; wait for Prometheus."""
    write_replicas_file(replicas_file(ctx), replica_urls(replicas))
    prometheus.write_config(ctx, comps)
    prometheus.reload(ctx)
    want = sorted(c.name for c in replicas)
    seen: dict[str, list[str]] = {"targets": []}

    def shown() -> bool | None:
        seen["targets"] = sorted(str(t.get("component")) for t in prometheus.active_targets(ctx, GROUP))
        return True if seen["targets"] == want else None

    wait_until(shown, TARGETS_TIMEOUT_S, 0.5, lambda: f"Prometheus at {ctx.endpoints.prometheus_url} still scrapes "
                                                     f"{seen['targets']} of job {GROUP} {TARGETS_TIMEOUT_S:.0f} s "
                                                     f"after a reload, expected {want}", error=StackError)


def scale(stack: LocalStack, to: int, remember: bool = True) -> ScaleResult:
    """Bring the running stack's replicas to ``to`` (1..10); see the module doc. Idempotent.

    ``remember``: record the count before (``scaled_from``) unless one is recorded already.
    Raises :class:`StackError` (a stack not running, one whose supervisord predates scaling, a replica
    that does not start, Prometheus not following).
    """
    if not isinstance(to, int) or isinstance(to, bool) or not 1 <= to <= MAX_REPLICAS:
        raise StackError(f"scale to {to!r}: replicas must be an integer in 1..{MAX_REPLICAS}")
    if not stack.is_running():
        raise StackError(f"scale to {to}: no stack is running in {stack.data_dir}")
    sup = stack.supervisor
    if not sup.can_change_groups():
        raise StackError(f"scale to {to}: the supervisord of the stack in {stack.data_dir} was started before "
                         "scaling existed (no stack.* RPC namespace); restart it: `resilience down`, then `up`")
    before_count = stack.ctx.replicas
    members = sorted((i["name"] for i in sup.group(GROUP)), key=_index)
    ctx = dataclasses.replace(stack.ctx, replicas=to)
    comps = components_for(ctx)
    replicas = [c for c in comps if c.group == GROUP]
    wanted = {c.name for c in replicas}
    added = [c for c in replicas if c.name not in members]
    removed = sorted((m for m in members if m not in wanted), key=_index, reverse=True)
    if remember and scaled_from(stack) is None and to != before_count:
        _update_state(stack, scaled_from=before_count)
    for comp in added:
        sup.add_program(comp, comps.index(comp))
    for comp in added:
        sup.ensure_running(comp.name, timeout=comp.startup_timeout)
        address = str(comp.metrics)
        wait_until(lambda a=address: _port_answers(a) or None, comp.startup_timeout, 0.2,  # type: ignore[misc]
                   f"{comp.name}: its HTTP port {address} did not answer within {comp.startup_timeout:.0f} s "
                   f"(see {sv.log_file(ctx, comp)})", error=StackError)
    if added or removed:
        _publish(stack, ctx, comps, replicas)
    for name in removed:
        stopwait = next((c.stopwaitsecs for c in stack.components() if c.name == name), 30)
        sup.remove_program(GROUP, name, timeout=stopwait + 30)
    _update_state(stack, replicas=to)
    sv.write_config(ctx, comps)
    stack.ctx.replicas = to
    result = ScaleResult(before_count, to, [c.name for c in added], removed)
    logger.info("scaled %s of the stack in %s: %s -> %s (added %s, removed %s)", GROUP, stack.data_dir,
                before_count, to, result.added or "none", result.removed or "none")
    return result


def scale_back(stack: LocalStack) -> ScaleResult | None:
    """Return to the count recorded before the first scale (``scaled_from``) and forget it; ``None`` when the
    stack is not scaled (nothing to do). A stack that is not running only has its ``stack.json`` set back."""
    original = scaled_from(stack)
    if original is None:
        return None
    if not stack.is_running():  # nothing runs: the next `up` starts the original count
        before = int((stack._read_state() or {}).get("replicas", original))
        _update_state(stack, replicas=original, scaled_from=None)
        stack.ctx.replicas = original
        return ScaleResult(before, original, [], [])
    result = scale(stack, original, remember=False)
    _update_state(stack, scaled_from=None)
    return result
