package org.sqlaudit.service.config;

import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import jakarta.validation.Valid;
import jakarta.validation.constraints.NotBlank;
import jakarta.validation.constraints.NotEmpty;
import jakarta.validation.constraints.NotNull;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.validation.annotation.Validated;

/**
 * Settings of one replica under {@code sqlaudit.*}; each is also an environment variable by Spring's
 * relaxed binding ({@code sqlaudit.dlq.topic} is {@code SQLAUDIT_DLQ_TOPIC}). Kafka, PostgreSQL, HTTP and
 * Actuator settings are Spring Boot's own ({@code spring.kafka.*}, {@code spring.datasource.*}...).
 * Every variable is listed in services/spring/README.md.
 */
@Validated
@ConfigurationProperties(prefix = "sqlaudit")
public class SqlAuditProperties {

    /** Replica name: {@code replica} column in ClickHouse and PostgreSQL, {@code dlq.replica} header. */
    @NotBlank
    private String replica = "sql-audit-service";
    /** Topic of SQL events. */
    @NotBlank
    private String topic = "sql-audit-events";
    @Valid
    private Dlq dlq = new Dlq();
    @Valid
    private ClickHouse clickhouse = new ClickHouse();
    @Valid
    private Retry retry = new Retry();
    @Valid
    private Jwt jwt = new Jwt();

    /** The dead-letter topic. */
    public static class Dlq {
        /** Topic that receives invalid records, byte for byte, with {@code dlq.*} headers. */
        @NotBlank
        private String topic = "sql-audit-events-dlq";
        /** How long a dead letter may wait for the broker's acknowledgement before the batch is retried. */
        @NotNull
        private Duration timeout = Duration.ofSeconds(10);

        public String getTopic() { return topic; }
        public void setTopic(String topic) { this.topic = topic; }
        public Duration getTimeout() { return timeout; }
        public void setTimeout(Duration timeout) { this.timeout = timeout; }
    }

    /** ClickHouse over HTTP (its 18.16 server speaks no protocol a current Java client supports). */
    public static class ClickHouse {
        /**
         * HTTP base URLs of the ClickHouse replicas, comma separated, tried in turn: a failed request moves
         * on to the next one, and the sink stays there until that one fails.
         */
        @NotEmpty
        private List<URI> urls = new ArrayList<>(List.of(URI.create("http://127.0.0.1:8123")));
        /** Database holding {@code audit_events}. */
        @NotBlank
        private String database = "sqlaudit";
        /**
         * Table written and read: {@code audit_events}, or on a sharded cluster the {@code Distributed} table
         * over it (inserts are synchronous, {@code insert_distributed_sync=1}: they return once every shard
         * holds its rows, so the batch is committed only then).
         */
        @NotBlank
        private String table = "audit_events";
        /** ClickHouse user (HTTP basic authentication). */
        private String user = "default";
        /** ClickHouse password (secret). */
        private String password = "";
        /** Connect timeout of one request. */
        @NotNull
        private Duration connectTimeout = Duration.ofSeconds(5);
        /** Whole-request timeout of one insert or query (the operations guide's 5000 ms write timeout). */
        @NotNull
        private Duration timeout = Duration.ofSeconds(5);

        public List<URI> getUrls() { return urls; }
        public void setUrls(List<URI> urls) { this.urls = urls; }
        public String getDatabase() { return database; }
        public void setDatabase(String database) { this.database = database; }
        public String getTable() { return table; }
        public void setTable(String table) { this.table = table; }
        public String getUser() { return user; }
        public void setUser(String user) { this.user = user; }
        public String getPassword() { return password; }
        public void setPassword(String password) { this.password = password; }
        public Duration getConnectTimeout() { return connectTimeout; }
        public void setConnectTimeout(Duration connectTimeout) { this.connectTimeout = connectTimeout; }
        public Duration getTimeout() { return timeout; }
        public void setTimeout(Duration timeout) { this.timeout = timeout; }
    }

    /** Backoff of a batch whose write failed: retried forever, never skipped. */
    public static class Retry {
        /** First delay after a failed batch. */
        @NotNull
        private Duration initialInterval = Duration.ofMillis(200);
        /** Delay cap (exponential backoff, factor 2). */
        @NotNull
        private Duration maxInterval = Duration.ofSeconds(5);

        public Duration getInitialInterval() { return initialInterval; }
        public void setInitialInterval(Duration initialInterval) { this.initialInterval = initialInterval; }
        public Duration getMaxInterval() { return maxInterval; }
        public void setMaxInterval(Duration maxInterval) { this.maxInterval = maxInterval; }
    }

    /** The read API's bearer tokens. */
    public static class Jwt {
        /** HS256 key, at least 32 bytes (secret; the service does not start without it). */
        private String secret = "";

        public String getSecret() { return secret; }
        public void setSecret(String secret) { this.secret = secret; }
    }

    public String getReplica() { return replica; }
    public void setReplica(String replica) { this.replica = replica; }
    public String getTopic() { return topic; }
    public void setTopic(String topic) { this.topic = topic; }
    public Dlq getDlq() { return dlq; }
    public void setDlq(Dlq dlq) { this.dlq = dlq; }
    public ClickHouse getClickhouse() { return clickhouse; }
    public void setClickhouse(ClickHouse clickhouse) { this.clickhouse = clickhouse; }
    public Retry getRetry() { return retry; }
    public void setRetry(Retry retry) { this.retry = retry; }
    public Jwt getJwt() { return jwt; }
    public void setJwt(Jwt jwt) { this.jwt = jwt; }
}
