"""The data contract of the service under test: where its events go and where the data-loss checks find them.

The defaults are the reference service's (``docs/events.md``); a team whose service names its topic,
tables or columns otherwise sets them under the ``contract`` key of the experiment's configuration
or the target file, e.g.::

    contract:
      topic: prod-sql-events
      clickhouse_table: audit_events_all     # a Distributed table is read through it, so every shard counts
      postgres_violations_table: audit.violations

Every name is checked to be a plain SQL identifier (optionally ``schema.name``) before it is put in
a query, so a contract cannot smuggle SQL in.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stack.endpoints import CH_DATABASE, CONSUMER_GROUP, DLQ_TOPIC, TOPIC

__all__ = ["DataContract"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class DataContract(BaseModel):
    """Topic, group, event fields, and the store tables and columns of one service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str = Field(default=TOPIC, min_length=1, description="the events topic")
    consumer_group: str = Field(default=CONSUMER_GROUP, min_length=1, description="the service's consumer group")
    dlq_topic: str = Field(default=DLQ_TOPIC, min_length=1, description="the dead-letter topic of invalid records")
    event_format: str = Field(default="sqlaudit-v1", description="how the load generator writes an event: "
                              "sqlaudit-v1 (docs/events.md) or module:function (loadtests/formats.py)")
    clickhouse_database: str = Field(default=CH_DATABASE, description="database of the events table")
    clickhouse_table: str = Field(default="audit_events", description="the events table; a Distributed table "
                                  "is read through it")
    clickhouse_id_column: str = "event_id"
    clickhouse_produced_at_column: str = Field(default="produced_at_ms", description="epoch ms the event was "
                                               "produced (the event's own time field)")
    clickhouse_stored_at_column: str = Field(default="stored_at_ms", description="epoch ms the row was written")
    clickhouse_duration_column: str = "duration_ms"
    clickhouse_sql_type_column: str = "sql_type"
    clickhouse_rows_affected_column: str = "rows_affected"
    postgres_violations_table: str = "violations"
    postgres_id_column: str = "event_id"
    postgres_checker_column: str = "checker"

    @field_validator("clickhouse_database", "clickhouse_table", "clickhouse_id_column", "clickhouse_produced_at_column",
                     "clickhouse_stored_at_column", "clickhouse_duration_column", "clickhouse_sql_type_column",
                     "clickhouse_rows_affected_column", "postgres_violations_table", "postgres_id_column",
                     "postgres_checker_column")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits, _ and one optional '.')")
        return value

    @property
    def events_table(self) -> str:
        """``database.table`` of the events in ClickHouse."""
        return f"{self.clickhouse_database}.{self.clickhouse_table}"
