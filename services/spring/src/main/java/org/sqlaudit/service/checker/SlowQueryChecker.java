package org.sqlaudit.service.checker;

import org.sqlaudit.service.config.CheckersProperties;
import org.sqlaudit.service.event.SqlEvent;

/** WARNING when {@code duration_ms > threshold_ms}; CRITICAL when {@code duration_ms > critical_ms}. Stateless. */
public final class SlowQueryChecker implements Checker {

    public static final String NAME = "SlowQuery";
    private final CheckersProperties.SlowQuery config;

    public SlowQueryChecker(CheckersProperties.SlowQuery config) {
        this.config = config;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Violation check(int partition, SqlEvent event) {
        long d = event.durationMs();
        if (d > config.getCriticalMs()) {
            return Violation.of(NAME, event, Severity.CRITICAL,
                    "duration " + d + " ms > critical " + config.getCriticalMs() + " ms");
        }
        if (d > config.getThresholdMs()) {
            return Violation.of(NAME, event, Severity.WARNING,
                    "duration " + d + " ms > threshold " + config.getThresholdMs() + " ms");
        }
        return null;
    }
}
