"""The embedded staging stack: real Kafka, PostgreSQL, ClickHouse, Prometheus and toxiproxy
on loopback, supervised by supervisord. See ``docs/local-stack.md``."""

from resilience.stack.core import LocalStack, StackStatus
from resilience.stack.endpoints import DEFAULT_PORT_BASE, Endpoints
from resilience.stack.errors import ComponentError, MissingToolError, StackError

__all__ = ["DEFAULT_PORT_BASE", "ComponentError", "Endpoints", "LocalStack", "MissingToolError",
           "StackError", "StackStatus"]
