"""Port plan and client endpoints of a local stack.

Every port is ``port_base + offset`` so two stacks can run side by side on
loopback. The audit service reaches Kafka, PostgreSQL and ClickHouse through
toxiproxy (so network faults bite); the load generator and the probes use the
direct endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

HOST = "127.0.0.1"
DEFAULT_PORT_BASE = 19000

# One table, so a reader sees the whole port plan at once.
OFFSETS: dict[str, int] = {
    "kafka": 0,  # broker listener for the load generator and probes (DIRECT)
    "kafka_controller": 1,  # KRaft controller
    "kafka_service": 2,  # broker listener advertised at the toxiproxy address (SERVICE)
    "postgres": 3,
    "clickhouse_tcp": 4,
    "clickhouse_http": 5,
    "clickhouse_interserver": 6,
    "prometheus": 7,
    "toxiproxy_api": 8,
    "proxy_kafka": 9,  # toxiproxy: service -> kafka
    "proxy_postgres": 10,  # toxiproxy: service -> postgres
    "proxy_clickhouse": 11,  # toxiproxy: service -> clickhouse
    "lag_exporter": 12,  # consumer-lag exporter (kafka_exporter's names)
    "pod_state_exporter": 13,  # replica readiness (kube-state-metrics' names)
    "clickhouse_tcp_secure": 14,  # --secure stack only: ClickHouse native protocol over TLS (the suite's reads)
    # --- ha profile only: the Patroni members' own network edges, so one member can be isolated as a
    # partition would (faults/postgres_isolation.py); nothing else uses them ---
    "proxy_dcs_pg1": 15,  # toxiproxy: member pg1 -> etcd
    "proxy_dcs_pg2": 16,
    "proxy_peer_pg1": 17,  # toxiproxy: the other member -> pg1's PostgreSQL (replication, pg_rewind)
    "proxy_peer_pg2": 18,
    "proxy_api_pg1": 19,  # toxiproxy: the other member -> pg1's Patroni REST API (leader race, failsafe)
    "audit_service": 20,  # audit-service replica i listens on +20+i (up to 10 replicas)
    # --- ha profile only: the second ClickHouse shard (its two replicas) ---
    "clickhouse_tcp_3": 30,
    "clickhouse_http_3": 31,
    "clickhouse_interserver_3": 32,
    "proxy_clickhouse_3": 33,
    "clickhouse_tcp_4": 34,
    "clickhouse_http_4": 35,
    "clickhouse_interserver_4": 36,
    "proxy_clickhouse_4": 37,
    # --- ha profile only (stack/profiles.py); a minimal stack binds none of these ---
    "kafka_2": 40,  # second broker: DIRECT listener
    "kafka_controller_2": 41,
    "kafka_service_2": 42,  # second broker: SERVICE listener (advertised at proxy_kafka_2)
    "kafka_3": 43,
    "kafka_controller_3": 44,
    "kafka_service_3": 45,
    "proxy_kafka_2": 46,  # toxiproxy: service -> second broker
    "proxy_kafka_3": 47,
    "postgres_2": 48,  # second Patroni member's PostgreSQL
    "proxy_postgres_2": 49,
    "patroni_api": 50,  # Patroni REST API of the first member (its PostgreSQL is "postgres")
    "patroni_api_2": 51,
    "etcd_client": 52,  # Patroni's DCS
    "etcd_peer": 53,
    "clickhouse_tcp_2": 54,  # second ClickHouse replica
    "clickhouse_http_2": 55,
    "clickhouse_interserver_2": 56,
    "proxy_clickhouse_2": 57,
    "zookeeper": 58,  # ClickHouse replication coordination
    "proxy_api_pg2": 59,
}
MAX_REPLICAS = 10
SPAN = 60  # ports reserved per stack; port bases must be at least this far apart
MINIMAL_SPAN = 40  # a minimal stack binds only offsets below this (bases 40 apart still work for minimal stacks)
# (offsets 30-37 are below it but only the ha profile binds them)

TOPIC = "sql-audit-events"
DLQ_TOPIC = "sql-audit-events-dlq"
CONSUMER_GROUP = "sql-audit-service"
PG_DATABASE = "sqlaudit"
PG_USER = "sqlaudit"
CH_DATABASE = "sqlaudit"


@dataclass(frozen=True)
class Endpoints:
    """Every address of the stack at ``port_base``; pure arithmetic, no I/O."""

    port_base: int = DEFAULT_PORT_BASE

    def port(self, name: str) -> int:
        """Port of ``name`` (a key of :data:`OFFSETS`)."""
        return self.port_base + OFFSETS[name]

    def replica_port(self, index: int) -> int:
        """HTTP port of audit-service replica ``index`` (0-based)."""
        if not 0 <= index < MAX_REPLICAS:
            raise ValueError(f"replica index {index} outside 0..{MAX_REPLICAS - 1}")
        return self.port("audit_service") + index

    # --- direct endpoints: load generator, probes, tests -------------------
    @property
    def kafka_bootstrap(self) -> str:
        return f"{HOST}:{self.port('kafka')}"

    @property
    def clickhouse_host(self) -> str:
        return HOST

    @property
    def clickhouse_port(self) -> int:
        return self.port("clickhouse_tcp")

    @property
    def prometheus_url(self) -> str:
        return f"http://{HOST}:{self.port('prometheus')}"

    @property
    def toxiproxy_url(self) -> str:
        return f"http://{HOST}:{self.port('toxiproxy_api')}"

    # --- proxied endpoints: what the audit service uses ---------------------
    @property
    def kafka_bootstrap_service(self) -> str:
        return f"{HOST}:{self.port('proxy_kafka')}"

    @property
    def clickhouse_port_service(self) -> int:
        return self.port("proxy_clickhouse")

    def proxies(self, profile: str = "minimal", service: str = "python") -> dict[str, tuple[int, int]]:
        """toxiproxy proxy name -> (listen port, upstream port); the ``ha`` profile has one proxy per
        Kafka broker, PostgreSQL member and ClickHouse replica (``kafka_2``, ``postgres_2``...).

        The ClickHouse proxies lead to the port the service speaks: the native protocol for the
        Python service (clickhouse-driver), the HTTP interface for the Spring one (its sink is HTTP),
        so a fault on the ``clickhouse`` edge bites either way."""
        ch = "clickhouse_http" if service == "spring" else "clickhouse_tcp"
        proxies = {
            "kafka": (self.port("proxy_kafka"), self.port("kafka_service")),
            "postgres": (self.port("proxy_postgres"), self.port("postgres")),
            "clickhouse": (self.port("proxy_clickhouse"), self.port(ch)),
        }
        if profile == "ha":
            proxies.update({
                "kafka_2": (self.port("proxy_kafka_2"), self.port("kafka_service_2")),
                "kafka_3": (self.port("proxy_kafka_3"), self.port("kafka_service_3")),
                "postgres_2": (self.port("proxy_postgres_2"), self.port("postgres_2")),
                "clickhouse_2": (self.port("proxy_clickhouse_2"), self.port(f"{ch}_2")),
                "clickhouse_3": (self.port("proxy_clickhouse_3"), self.port(f"{ch}_3")),
                "clickhouse_4": (self.port("proxy_clickhouse_4"), self.port(f"{ch}_4")),
            })
            proxies.update(self.patroni_proxies())
        return proxies

    def patroni_proxies(self) -> dict[str, tuple[int, int]]:
        """The ha profile's proxies between the Patroni members and between each member and etcd
        (``dcs_pg1``, ``peer_pg1``, ``api_pg1``...): Patroni reaches etcd, and the other member's
        PostgreSQL and REST API, only through them, so a member can be cut off as a partition would."""
        return {
            "dcs_pg1": (self.port("proxy_dcs_pg1"), self.port("etcd_client")),
            "dcs_pg2": (self.port("proxy_dcs_pg2"), self.port("etcd_client")),
            "peer_pg1": (self.port("proxy_peer_pg1"), self.port("postgres")),
            "peer_pg2": (self.port("proxy_peer_pg2"), self.port("postgres_2")),
            "api_pg1": (self.port("proxy_api_pg1"), self.port("patroni_api")),
            "api_pg2": (self.port("proxy_api_pg2"), self.port("patroni_api_2")),
        }
