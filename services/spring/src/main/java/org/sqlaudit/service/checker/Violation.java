package org.sqlaudit.service.checker;

import java.util.UUID;

import org.sqlaudit.service.event.SqlEvent;

/**
 * One checker verdict about one event; the PostgreSQL key is {@code (event_id, checker)}.
 *
 * @param eventId      the event
 * @param checker      checker name: SlowQuery, ActualImpact, ErrorRate or Frequency
 * @param severity     WARNING or CRITICAL
 * @param app          the event's application
 * @param database     the event's database
 * @param message      why, in words
 * @param producedAtMs the event's {@code produced_at}
 */
public record Violation(UUID eventId, String checker, Severity severity, String app, String database, String message,
                        long producedAtMs) {

    static Violation of(String checker, SqlEvent event, Severity severity, String message) {
        return new Violation(event.eventId(), checker, severity, event.app(), event.database(), message,
                event.producedAt());
    }
}
