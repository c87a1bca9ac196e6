package org.sqlaudit.service.checker;

import org.sqlaudit.service.config.CheckersProperties;
import org.sqlaudit.service.event.SqlEvent;
import org.sqlaudit.service.event.SqlType;

/**
 * For UPDATE and DELETE only: WARNING when {@code rows_affected > threshold_rows}, CRITICAL when
 * {@code rows_affected > critical_rows}. Stateless.
 */
public final class ActualImpactChecker implements Checker {

    public static final String NAME = "ActualImpact";
    private final CheckersProperties.ActualImpact config;

    public ActualImpactChecker(CheckersProperties.ActualImpact config) {
        this.config = config;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Violation check(int partition, SqlEvent event) {
        if (event.sqlType() != SqlType.UPDATE && event.sqlType() != SqlType.DELETE) {
            return null;
        }
        long rows = event.rowsAffected();
        if (rows > config.getCriticalRows()) {
            return Violation.of(NAME, event, Severity.CRITICAL,
                    event.sqlType() + " changed " + rows + " rows > critical " + config.getCriticalRows());
        }
        if (rows > config.getThresholdRows()) {
            return Violation.of(NAME, event, Severity.WARNING,
                    event.sqlType() + " changed " + rows + " rows > threshold " + config.getThresholdRows());
        }
        return null;
    }
}
