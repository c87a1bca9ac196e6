package org.sqlaudit.service.sink;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;

import org.springframework.dao.DataAccessException;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.stereotype.Component;
import org.springframework.transaction.TransactionException;
import org.springframework.transaction.support.TransactionTemplate;

import org.sqlaudit.service.checker.Violation;
import org.sqlaudit.service.config.SqlAuditProperties;

/**
 * Violations upserted into PostgreSQL {@code violations} keyed by {@code (event_id, checker)}, the table and
 * upsert of the Python service (sqlaudit/schema/postgres.sql), in one transaction per batch. Connections
 * come from Spring Boot's HikariCP pool; give it a multi-host URL with {@code targetServerType=primary}
 * and new connections find the new primary after a Patroni failover. Thread-safe.
 */
@Component
public class PostgresSink {

    /** Sink name: the {@code sink} metric tag. */
    public static final String NAME = "postgres";
    static final String UPSERT = """
            INSERT INTO violations (event_id, checker, severity, app, database, message, produced_at, detected_at, replica)
            VALUES (?, ?, ?, ?, ?, ?, ?, now(), ?)
            ON CONFLICT (event_id, checker) DO UPDATE
            SET severity = EXCLUDED.severity, message = EXCLUDED.message, app = EXCLUDED.app,
                database = EXCLUDED.database, produced_at = EXCLUDED.produced_at, replica = EXCLUDED.replica
            """;

    private final JdbcTemplate jdbc;
    private final TransactionTemplate tx;
    private final String replica;

    public PostgresSink(JdbcTemplate jdbc, TransactionTemplate tx, SqlAuditProperties props) {
        this.jdbc = jdbc;
        this.tx = tx;
        this.replica = props.getReplica();
    }

    /**
     * Upserts {@code violations} in one transaction.
     *
     * @throws SinkException when PostgreSQL did not commit them
     */
    public void write(List<Violation> violations) {
        if (violations.isEmpty()) {
            return;
        }
        try {
            tx.executeWithoutResult(status -> jdbc.batchUpdate(UPSERT, violations, violations.size(), (ps, v) -> {
                ps.setObject(1, v.eventId());
                ps.setString(2, v.checker());
                ps.setString(3, v.severity().name());
                ps.setString(4, v.app());
                ps.setString(5, v.database());
                ps.setString(6, v.message());
                ps.setObject(7, OffsetDateTime.ofInstant(Instant.ofEpochMilli(v.producedAtMs()), ZoneOffset.UTC));
                ps.setString(8, replica);
            }));
        }
        catch (DataAccessException | TransactionException exc) {
            String msg = String.valueOf(exc.getMostSpecificCause().getMessage()).strip();
            throw new SinkException(NAME, "upsert of " + violations.size() + " violations failed: "
                    + exc.getClass().getSimpleName() + ": " + (msg.length() > 300 ? msg.substring(0, 300) : msg), exc);
        }
    }
}
