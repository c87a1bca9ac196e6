package org.sqlaudit.service.checker;

import java.util.Collection;

import org.sqlaudit.service.event.SqlEvent;

/**
 * A checker looks at events one by one, in partition order, and returns at most one violation per event.
 * {@code partition} lets stateful checkers keep their state per Kafka partition, so that
 * {@link #forget(Collection)} drops exactly the state of partitions this replica no longer owns.
 */
public interface Checker {

    /** The checker's name, stored in {@code violations.checker} and used as the {@code checker} metric tag. */
    String name();

    /** The violation {@code event} causes, or {@code null}. */
    Violation check(int partition, SqlEvent event);

    /** Drops the state kept for {@code partitions} (after a revocation); stateless checkers keep nothing. */
    default void forget(Collection<Integer> partitions) {
    }

    /** Events ignored because their window was already closed (window checkers only). */
    default long lateEvents() {
        return 0;
    }
}
