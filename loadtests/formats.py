"""How the load generator writes an event onto Kafka: the event format of the service's data contract.

``sqlaudit-v1`` is the reference contract (``docs/events.md``): the JSON of
:class:`sqlaudit.events.SqlEvent`, keyed by the app name. A service with another contract names a
function ``module:function`` that takes the generated :class:`sqlaudit.events.SqlEvent` and returns
``(key, value)`` bytes; the ledger still records the generator's ``event_id`` and ``produced_at``,
so the function must carry both into the message (under whatever field names the service reads),
and the contract's ClickHouse columns must store them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sqlaudit.events import SqlEvent

__all__ = ["DEFAULT_FORMAT", "EventFormat", "resolve_format", "sqlaudit_v1"]

EventFormat = Callable[[SqlEvent], tuple[bytes | None, bytes]]
DEFAULT_FORMAT = "sqlaudit-v1"


def sqlaudit_v1(event: SqlEvent) -> tuple[bytes | None, bytes]:
    """The reference contract: the event's JSON, keyed by its app."""
    return event.app.encode(), event.to_bytes()


BUILT_IN: dict[str, EventFormat] = {DEFAULT_FORMAT: sqlaudit_v1}


def resolve_format(name: str) -> EventFormat:
    """The format called ``name`` (built in, or ``module:function``).

    Raises:
        ValueError: naming the format and why it cannot be used.
    """
    if name in BUILT_IN:
        return BUILT_IN[name]
    module, sep, function = name.partition(":")
    if not sep or not module or not function:
        raise ValueError(f"event format {name!r}: expected one of {', '.join(BUILT_IN)} or module:function")
    try:
        found = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"event format {name!r}: {type(exc).__name__}: {exc}") from None
    if not callable(found):
        raise ValueError(f"event format {name!r}: {module}.{function} is not callable")
    return found
