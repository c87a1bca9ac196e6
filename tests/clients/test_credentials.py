"""Credentials: resolved by the settings model, built into clients in one place, never shown.

No stack here: the settings model is fed a configuration, a target file and an environment; the
HTTP side is a real local server that demands a bearer token; the TLS side is a real handshake
against a certificate made by :func:`stack.security.ensure_tls`.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from clients.clickhouse import ClickHouseAuth
from clients.http_auth import HttpAuth
from clients.kafka import KafkaAuth
from probes import prom
from stack import security
from target.settings import SettingsError, resolve

PASSWORD = "pw-91c2f6-never-shown"


def test_kafka_auth_keywords_and_environment_round_trip() -> None:
    auth = KafkaAuth("SASL_SSL", "SCRAM-SHA-512", "suite", PASSWORD, "/etc/ca.pem")
    assert auth.client_kwargs() == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                                    "sasl_plain_username": "suite", "sasl_plain_password": PASSWORD,
                                    "ssl_check_hostname": True, "ssl_cafile": "/etc/ca.pem"}
    assert KafkaAuth().client_kwargs() == {}
    env = auth.environment("X_")
    assert KafkaAuth.from_environment(env, "X_") == auth
    assert KafkaAuth.from_environment({}, "X_") == KafkaAuth()
    assert PASSWORD not in repr(auth) and PASSWORD not in auth.describe()
    assert "'suite'" in auth.describe()


@pytest.mark.parametrize("kwargs, needle", [
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": "u"}, "password"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "username": "u", "password": "p"},
     "sasl_mechanism"),
    ({"security_protocol": "TLS"}, "security_protocol"),
])
def test_kafka_auth_that_cannot_log_in_is_refused(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        KafkaAuth(**kwargs)


def test_clickhouse_and_http_auth_hide_their_secrets() -> None:
    ch = ClickHouseAuth("svc", PASSWORD)
    assert ch.client_kwargs() == {"user": "svc", "password": PASSWORD}
    assert PASSWORD not in repr(ch) and "'svc'" in ch.describe()
    assert ClickHouseAuth("svc", PASSWORD, secure=True, ca_file="/ca").client_kwargs()["ca_certs"] == "/ca"
    token = HttpAuth(bearer_token=PASSWORD)
    assert token.headers() == {"Authorization": f"Bearer {PASSWORD}"}
    assert PASSWORD not in repr(token) and PASSWORD not in token.describe()
    assert HttpAuth(username="u", password="p").headers() == {"Authorization": "Basic dTpw"}
    with pytest.raises(ValueError):
        HttpAuth(bearer_token="t", username="u", password="p")


def test_settings_resolve_credentials_from_the_environment_with_their_source() -> None:
    env = {"RESILIENCE_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "RESILIENCE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "RESILIENCE_KAFKA_USERNAME": "suite", "RESILIENCE_KAFKA_PASSWORD": PASSWORD,
           "RESILIENCE_CLICKHOUSE_USER": "reader", "RESILIENCE_CLICKHOUSE_PASSWORD": PASSWORD,
           "RESILIENCE_PROMETHEUS_TOKEN": PASSWORD, "RESILIENCE_POSTGRES_DSN": "postgresql://svc@db:5432/audit",
           "RESILIENCE_POSTGRES_PASSWORD": PASSWORD}
    s = resolve({"target": "kubernetes", "prometheus_url": "http://p", "kafka_bootstrap": "k:9093",
                 "clickhouse_host": "c", "clickhouse_port": 9000}, environ=env)
    assert s.kafka_auth().client_kwargs()["sasl_plain_password"] == PASSWORD
    assert s.source("kafka_password") == "env RESILIENCE_KAFKA_PASSWORD"
    assert s.clickhouse_auth() == ClickHouseAuth("reader", PASSWORD)
    assert s.prometheus_auth().headers() == {"Authorization": f"Bearer {PASSWORD}"}
    assert s.postgres_kwargs() == {"conninfo": "postgresql://svc@db:5432/audit", "password": PASSWORD}
    assert sorted(set(s.secret_values())) == [PASSWORD]
    assert PASSWORD not in repr(s) and PASSWORD not in str(s.model_dump())


def test_a_secret_in_the_target_file_is_refused_naming_the_key_and_the_variable(tmp_path: Path) -> None:
    target = tmp_path / "target.yaml"
    target.write_text(f"kafka_username: suite\nkafka_password: {PASSWORD}\n")
    with pytest.raises(SettingsError) as err:
        resolve({}, environ={"RESILIENCE_TARGET_CONFIG": str(target)})
    message = str(err.value)
    assert "kafka_password" in message and str(target) in message and "RESILIENCE_KAFKA_PASSWORD" in message
    assert PASSWORD not in message


def test_bad_credentials_are_errors_naming_keys_and_sources_never_values() -> None:
    s = resolve({}, environ={"RESILIENCE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RESILIENCE_KAFKA_PASSWORD": PASSWORD})
    with pytest.raises(SettingsError) as err:
        s.kafka_auth()
    assert "kafka_username (from default)" in str(err.value) and PASSWORD not in str(err.value)
    with pytest.raises(SettingsError) as err:
        resolve({}, environ={"RESILIENCE_POSTGRES_DSN": f"postgresql://svc:{PASSWORD}@db/audit"})
    assert "postgres_dsn" in str(err.value) and PASSWORD not in str(err.value)


def test_a_secure_local_stack_lends_its_credentials_and_an_explicit_key_wins(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    data.mkdir()
    (data / "stack.json").write_text(json.dumps({"port_base": 22000, "profile": "minimal", "secure": True}))
    (data / "secrets.json").write_text(json.dumps({"kafka_suite_password": PASSWORD,
                                                   "clickhouse_suite_password": PASSWORD}))
    security.Tls.of(data).ca_cert.parent.mkdir()
    security.Tls.of(data).ca_cert.write_text("a CA")
    s = resolve({"stack_port_base": 22000, "stack_data_dir": str(data)}, environ={})
    assert s.kafka_auth().username == security.KAFKA_SUITE_USER
    assert s.kafka_auth().password == PASSWORD and s.kafka_security_protocol == "SASL_SSL"
    ca = str(security.Tls.of(data).ca_cert)
    assert s.clickhouse_auth() == ClickHouseAuth(security.CH_SUITE_USER, PASSWORD, secure=True, ca_file=ca)
    assert s.clickhouse_port == 22014  # the TLS port (clickhouse_tcp_secure)
    assert s.source("kafka_password") == "local stack at port base 22000"
    wrong = resolve({"stack_port_base": 22000, "stack_data_dir": str(data)},
                    environ={"RESILIENCE_CLICKHOUSE_PASSWORD": "wrong"})
    assert wrong.clickhouse_auth().password == "wrong"
    assert wrong.source("clickhouse_password") == "env RESILIENCE_CLICKHOUSE_PASSWORD"
    (data / "stack.json").write_text(json.dumps({"port_base": 22000, "profile": "minimal"}))
    assert resolve({"stack_port_base": 22000, "stack_data_dir": str(data)}, environ={}).kafka_auth() == KafkaAuth()


@pytest.fixture
def token_server() -> Iterator[str]:
    """A real HTTP server that answers Prometheus' query API only with the right bearer token."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {PASSWORD}":
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [0, "42"]}]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield url
    finally:
        prom.use_auth(url, HttpAuth())
        server.shutdown()


def test_prometheus_queries_carry_the_token_registered_for_their_url(token_server: str) -> None:
    with pytest.raises(prom.ProbeError, match="401"):
        prom.instant(token_server, "up", timeout_s=2)
    prom.use_auth(token_server, HttpAuth(bearer_token=PASSWORD))
    assert prom.instant(token_server, "up", timeout_s=2) == 42.0


def test_the_stacks_certificate_verifies_against_its_ca_for_127_0_0_1(tmp_path: Path) -> None:
    """A real TLS handshake: the server presents ensure_tls's certificate, the client trusts only its CA."""
    tls = security.ensure_tls(tmp_path)
    assert oct(tls.server_pem.stat().st_mode & 0o777) == "0o600"
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls.server_pem)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(tls.ca_cert))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        assert conn.recv(2) == b"ok"
    thread.join(5)
    listener.close()
    assert security.ensure_tls(tmp_path).server_pem.read_bytes() == tls.server_pem.read_bytes()  # made once


def test_a_ca_file_that_is_not_there_is_named_when_the_login_is_built(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    s = resolve({}, environ={"RESILIENCE_KAFKA_SECURITY_PROTOCOL": "SSL", "RESILIENCE_KAFKA_CA_FILE": str(missing)})
    with pytest.raises(SettingsError, match=r"kafka_ca_file.*env RESILIENCE_KAFKA_CA_FILE.*not a readable file"):
        s.kafka_auth()
