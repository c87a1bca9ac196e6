package org.sqlaudit.service.sink;

import org.sqlaudit.service.event.SqlEvent;

/**
 * A valid event and where it was read from.
 *
 * @param event     the event
 * @param partition Kafka partition
 * @param offset    Kafka offset
 */
public record EventRow(SqlEvent event, int partition, long offset) {
}
