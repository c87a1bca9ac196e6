"""The embedded staging stack: real Kafka, PostgreSQL, ClickHouse, Prometheus and toxiproxy on
loopback, supervised by supervisord. See ``docs/local-stack.md`` and ``docs/architecture.md``.

Import what you need from its modules (``stack.core.LocalStack``, ``stack.endpoints.Endpoints``):
this package's ``__init__`` imports nothing, so the small modules stay cheap to import.
"""
