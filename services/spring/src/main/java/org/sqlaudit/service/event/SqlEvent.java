package org.sqlaudit.service.event;

import java.util.UUID;

/**
 * One SQL statement executed by an application: the event contract v1 (docs/events.md).
 *
 * @param eventId      unique id; the dedup key in ClickHouse and PostgreSQL
 * @param app          application that ran the statement (also the Kafka message key)
 * @param database     database the statement ran against
 * @param sql          statement text, literals included
 * @param sqlType      statement kind
 * @param durationMs   execution time; values beyond {@code Long.MAX_VALUE} saturate there
 * @param rowsAffected rows read (SELECT) or changed (DML); fits Int64 (larger is dead-lettered)
 * @param errorCode    SQLSTATE or vendor code, {@code null} on success
 * @param producedAt   when the event was produced, UTC epoch milliseconds
 */
public record SqlEvent(UUID eventId, String app, String database, String sql, SqlType sqlType, long durationMs,
                       long rowsAffected, String errorCode, long producedAt) {

    /** An error is an event whose {@code error_code} is neither null nor empty. */
    public boolean isError() {
        return errorCode != null && !errorCode.isEmpty();
    }
}
