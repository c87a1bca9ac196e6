"""The replica's small HTTP server: ``/metrics`` and Spring-style health endpoints.

``GET /metrics``                      Prometheus text format.
``GET /actuator/health/liveness``     200 ``{"status": "UP"}`` or 503 ``DOWN``.
``GET /actuator/health/readiness``    200 ``UP`` or 503 ``DOWN`` with the reasons.
``GET /actuator/health``              both, 200 only when both are UP.
``GET /actuator/configprops``         the configuration in effect (secrets masked), as Spring Boot's
                                      endpoint of that name: how to check a config change took effect.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sqlaudit.health import Health

__all__ = ["HealthServer"]

logger = logging.getLogger(__name__)

class HealthServer:
    """Serves metrics and health in a daemon thread until :meth:`stop`."""

    def __init__(self, host: str, port: int, health: Health, configprops: dict[str, Any] | None = None) -> None:
        self.health = health
        self.configprops = configprops or {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "sqlaudit"
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                if path == "/metrics":
                    body = generate_latest(outer.health.metrics.registry)
                    self._send(200, body, CONTENT_TYPE_LATEST)
                elif path == "/actuator/health/liveness":
                    self._health(*outer.health.live())
                elif path == "/actuator/health/readiness":
                    self._health(*outer.health.ready())
                elif path == "/actuator/configprops":
                    self._send(200, json.dumps(outer.configprops).encode(), "application/json")
                elif path == "/actuator/health":
                    live, ldetail = outer.health.live()
                    ready, rdetail = outer.health.ready()
                    self._health(live and ready, {"liveness": ldetail, "readiness": rdetail})
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _health(self, ok: bool, details: dict[str, Any]) -> None:
                body = json.dumps({"status": "UP" if ok else "DOWN", "details": details}).encode()
                self._send(200 if ok else 503, body, "application/json")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("http: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("HTTP on %s:%s (/metrics, /actuator/health/{liveness,readiness})",
                    self._server.server_address[0], self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
