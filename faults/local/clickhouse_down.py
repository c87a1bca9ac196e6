"""Local backend of :mod:`faults.clickhouse_down`: stop / start the ``clickhouse`` program
(ha profile: ``clickhouse`` or ``clickhouse-2``, picked by ``replica``)."""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.local import _ha
from faults.local.processes import start_again, stop_for
from stack.components import clickhouse
from target.settings import TargetSettings, resolve

PROGRAM = "clickhouse"


def program(settings: TargetSettings, replica: int | None, what: str) -> str:
    """Supervisor program of ClickHouse replica ``replica`` (``None``: 0) on this stack's profile."""
    if _ha.is_ha(settings):
        return clickhouse.CH_REPLICAS[_ha.pick(replica, len(clickhouse.CH_REPLICAS), "replica", what)].program
    if replica not in (None, 0):
        raise ActivityFailed(f"{what}: replica={replica!r}: the minimal profile has one ClickHouse (0)")
    return PROGRAM


def stop_clickhouse(duration: float | None = None, replica: int | None = None,
                    configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.clickhouse_down.stop_clickhouse`."""
    settings = resolve(configuration)
    what = "stop ClickHouse" + (f" replica {replica}" if replica is not None else "")
    return stop_for(settings, program(settings, replica, what), what)


def start_clickhouse(replica: int | None = None, configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.clickhouse_down.start_clickhouse`."""
    settings = resolve(configuration)
    what = "start ClickHouse" + (f" replica {replica}" if replica is not None else "")
    return start_again(settings, program(settings, replica, what), what)
