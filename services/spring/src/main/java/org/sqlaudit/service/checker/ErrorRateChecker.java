package org.sqlaudit.service.checker;

import java.util.Collection;
import java.util.Locale;

import org.sqlaudit.service.config.CheckersProperties;
import org.sqlaudit.service.event.SqlEvent;

/**
 * Per (partition, app, window): counts events and errors in partition order. Nothing fires while
 * {@code events < min_events}; the first event after which {@code errors / events > critical} gets a
 * CRITICAL; otherwise the first event after which {@code > threshold} gets a WARNING; after a CRITICAL
 * nothing more fires in that window, after a WARNING only the CRITICAL can. At most one of each per window.
 */
public final class ErrorRateChecker implements Checker {

    public static final String NAME = "ErrorRate";

    private static final class Counts {
        long events;
        long errors;
        int level;  // 0 nothing fired, 1 WARNING fired, 2 CRITICAL fired
    }

    private final CheckersProperties.ErrorRate config;
    private final TumblingWindows<Counts> windows;

    public ErrorRateChecker(CheckersProperties.ErrorRate config, long retentionMs) {
        this.config = config;
        this.windows = new TumblingWindows<>(config.getWindowMs(), retentionMs, Counts::new);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Violation check(int partition, SqlEvent event) {
        Counts counts = windows.get(partition, event.app(), event.producedAt());
        if (counts == null) {
            return null;
        }
        counts.events++;
        if (event.isError()) {
            counts.errors++;
        }
        if (counts.events < config.getMinEvents() || counts.level == 2) {
            return null;
        }
        double ratio = (double) counts.errors / counts.events;
        long window = event.producedAt() / config.getWindowMs();
        String detail = "app " + event.app() + ": " + counts.errors + "/" + counts.events + " errors in window "
                + window + " (" + config.getWindowMs() + " ms)";
        if (ratio > config.getCritical()) {
            counts.level = 2;
            return Violation.of(NAME, event, Severity.CRITICAL, detail + ", ratio "
                    + String.format(Locale.ROOT, "%.3f", ratio) + " > critical " + config.getCritical());
        }
        if (ratio > config.getThreshold() && counts.level == 0) {
            counts.level = 1;
            return Violation.of(NAME, event, Severity.WARNING, detail + ", ratio "
                    + String.format(Locale.ROOT, "%.3f", ratio) + " > threshold " + config.getThreshold());
        }
        return null;
    }

    @Override
    public void forget(Collection<Integer> partitions) {
        windows.forget(partitions);
    }

    @Override
    public long lateEvents() {
        return windows.late();
    }
}
