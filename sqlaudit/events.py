"""The SQL-execution event contract, version 1.

One JSON object per Kafka message on ``sql-audit-events``, keyed by ``app``.
The load generator (``loadtests/``) produces it, the reference audit service
consumes it; ``sqlaudit/schema/event-v1.schema.json`` is generated from
:class:`SqlEvent` and documented in ``docs/events.md``.
"""

from __future__ import annotations

import json
import time
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1

__all__ = ["SCHEMA_VERSION", "InvalidEvent", "SqlEvent", "SqlType", "decode_event", "now_ms"]


class SqlType(StrEnum):
    SELECT = "SELECT"
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    DDL = "DDL"
    OTHER = "OTHER"


class SqlEvent(BaseModel):
    """One SQL statement executed by an application, as reported to the audit service."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    schema_version: Literal[1] = Field(default=1, description="Contract version; consumers reject others.")
    event_id: uuid.UUID = Field(description="Unique id of the event; the dedup key in every store.")
    app: str = Field(min_length=1, max_length=128, description="Application that ran the statement.")
    database: str = Field(min_length=1, max_length=128, description="Database the statement ran against.")
    sql: str = Field(min_length=1, max_length=65536, description="Statement text, literals included.")
    sql_type: SqlType = Field(description="Statement kind.")
    duration_ms: int = Field(ge=0, description="Execution time in milliseconds.")
    rows_affected: int = Field(ge=0, description="Rows read (SELECT) or changed (DML).")
    error_code: str | None = Field(default=None, max_length=64,
                                   description="Database error code (SQLSTATE or vendor), null on success.")
    produced_at: int = Field(ge=0, description="When the event was produced: UTC epoch milliseconds.")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class InvalidEvent(ValueError):
    """A message that is not a valid v1 event; ``reason`` says why (for the dead-letter record)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_event(raw: bytes | None) -> SqlEvent:
    """Parse one Kafka message value; raise :class:`InvalidEvent` on bad JSON or a bad field."""
    if raw is None:
        raise InvalidEvent("empty message (tombstone)")
    try:
        # Strict JSON mode: "12" is not an int, true is not an int; UUIDs and enums come as strings.
        return SqlEvent.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise InvalidEvent(f"not JSON: {first['msg']}") from None
        if first["type"] == "model_type":
            raise InvalidEvent("not a JSON object") from None
        field = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise InvalidEvent(f"field {field}: {first['msg']}") from None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def json_schema() -> dict[str, Any]:
    """The JSON schema of the contract (what ``event-v1.schema.json`` holds)."""
    schema = SqlEvent.model_json_schema()
    schema["$id"] = "https://sql-audit-resilience/schemas/event-v1.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


if __name__ == "__main__":  # regenerate the committed schema file
    from pathlib import Path

    out = Path(__file__).parent / "schema" / "event-v1.schema.json"
    out.write_text(json.dumps(json_schema(), indent=2) + "\n")
    print(f"wrote {out}")
