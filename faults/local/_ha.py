"""Helpers of the local backends for the ``ha`` profile (Patroni pair, ClickHouse replicas, three brokers).

The member layout (program names, Patroni members, broker indices) belongs to the stack's
component modules (:mod:`stack.components.patroni`, ``.kafka``, ``.clickhouse``); this module only
maps fault arguments onto it and adds the one process action the single-node faults do not need:
a hard kill that stays down (:func:`kill_and_hold`).
"""

import logging
import signal
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed

from clients.wait import wait_until
from faults.local import local_stack
from faults.local.processes import Programs, killpg
from stack.components import patroni
from stack.context import StackContext
from stack.errors import ComponentError
from stack.supervisor import DOWN_STATES
from target.settings import TargetSettings

logger = logging.getLogger(__name__)

HTTP_TIMEOUT = (3.0, 60.0)  # a switchover answers once it is done


def is_ha(settings: TargetSettings) -> bool:
    """Whether the stack ``settings`` points at runs the ``ha`` profile."""
    return local_stack(settings).ctx.profile == "ha"


def require_ha(settings: TargetSettings, what: str, needs: str) -> None:
    """``ActivityFailed`` unless the stack runs the ``ha`` profile; ``needs`` says what of it the fault acts on."""
    profile = local_stack(settings).ctx.profile
    if profile != "ha":
        raise ActivityFailed(f"{what}: needs the ha profile ({needs}); the stack at port base "
                             f"{settings.stack_port_base} runs {profile!r}: `resilience up --profile ha`")


def context(settings: TargetSettings) -> StackContext:
    return local_stack(settings).ctx


def pick(index: int | None, count: int, kind: str, what: str) -> int:
    """``index`` (``None`` means 0) if the ha profile has it (``0..count-1``), else ``ActivityFailed``."""
    if index is None:
        return 0
    if index >= count:
        raise ActivityFailed(f"{what}: {kind}={index!r}: the ha profile has {kind}s 0..{count - 1}")
    return index


def leader(settings: TargetSettings, what: str) -> patroni.PgMember:
    """The Patroni member holding the leader lock; ``ActivityFailed`` if there is none or none answers."""
    try:
        found = patroni.patroni_leader(context(settings))
    except ComponentError as exc:
        raise ActivityFailed(f"{what}: {exc}") from exc
    if found is None:
        raise ActivityFailed(f"{what}: the Patroni cluster has no running leader right now")
    return found


def cluster(settings: TargetSettings, what: str) -> dict[str, Any]:
    try:
        return patroni.patroni_cluster(context(settings))
    except ComponentError as exc:
        raise ActivityFailed(f"{what}: {exc}") from exc


def switchover(settings: TargetSettings, current: patroni.PgMember, candidate: patroni.PgMember, what: str) -> str:
    """``POST /switchover`` on the leader's REST API; returns Patroni's answer."""
    url = f"http://127.0.0.1:{context(settings).endpoints.port(current.api_port)}/switchover"
    try:
        resp = requests.post(url, json={"leader": current.name, "candidate": candidate.name}, timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        raise ActivityFailed(f"{what}: Patroni at {url}: {exc}") from exc
    if resp.status_code != 200:
        raise ActivityFailed(f"{what}: Patroni at {url}: HTTP {resp.status_code}: {resp.text.strip()[:300]}")
    logger.info("Patroni switchover %s -> %s via %s: %s", current.name, candidate.name, url, resp.text.strip())
    return resp.text.strip()


def wait_patroni_redundant(settings: TargetSettings, timeout: float, what: str) -> str:
    """Wait until the cluster has a running leader and every other member streams (and a sync
    standby when synchronous mode is on); returns the member summary."""
    ctx = context(settings)
    last = {"seen": ""}

    def redundant() -> str | None:
        try:
            state = patroni.patroni_cluster(ctx)
            sync = bool(requests.get(f"http://127.0.0.1:{ctx.endpoints.port('patroni_api')}/config",
                                     timeout=(2.0, 5.0)).json().get("synchronous_mode")) \
                if state.get("members") else False
            problems = patroni.patroni_cluster_problems(state, sync)
            last["seen"] = patroni.describe_members(state) + (f" ({'; '.join(problems)})" if problems else "")
            return None if problems else last["seen"]
        except (ComponentError, requests.RequestException, ValueError) as exc:
            last["seen"] = str(exc)
            return None

    return wait_until(redundant, timeout, 0.5, lambda: f"{what}: Patroni cluster not back to a leader and streaming "
                                                       f"replica(s) within {timeout:.0f} s: {last['seen']}",
                      error=ActivityFailed)


def kill_and_hold(programs: Programs, program: str, what: str, timeout: float = 30.0) -> int:
    """SIGKILL ``program``'s process group and keep it down (STOPPED) until it is started again.

    The group is frozen (SIGSTOP) first, then supervisord is asked to stop it (its stop signal
    stays pending on the frozen processes) and the group gets SIGKILL: no graceful shutdown
    happens, and supervisord records STOPPED instead of restarting it. Returns the killed pid.
    """
    pid = int(programs.running_info(program, what)["pid"])
    killpg(pid, signal.SIGSTOP, what)
    try:
        programs.request_stop(program, what)
    except ActivityFailed:
        killpg(pid, signal.SIGCONT, what)
        raise
    killpg(pid, signal.SIGKILL, what)
    programs.wait_state(program, DOWN_STATES, timeout, what)
    logger.info("SIGKILL %s (pid %s), held down via %s", program, pid, programs.where)
    return pid
