package org.sqlaudit.service.checker;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

import org.sqlaudit.service.config.CheckersProperties;
import org.sqlaudit.service.event.SqlEvent;

/**
 * Per (partition, app, normalised statement, window): counts occurrences in partition order; the
 * {@code threshold + 1}-th gets a WARNING and the {@code critical + 1}-th a CRITICAL.
 */
public final class FrequencyChecker implements Checker {

    public static final String NAME = "Frequency";

    private record Key(String app, String statement) {
    }

    private static final class Count {
        long n;
    }

    private final CheckersProperties.Frequency config;
    private final TumblingWindows<Count> windows;
    private final Map<String, String> normCache = new HashMap<>();

    public FrequencyChecker(CheckersProperties.Frequency config, long retentionMs) {
        this.config = config;
        this.windows = new TumblingWindows<>(config.getWindowMs(), retentionMs, Count::new);
    }

    @Override
    public String name() {
        return NAME;
    }

    private String normalize(String sql) {
        String norm = normCache.get(sql);
        if (norm == null) {
            if (normCache.size() > 50_000) {
                normCache.clear();
            }
            norm = SqlNormalizer.normalize(sql);
            normCache.put(sql, norm);
        }
        return norm;
    }

    @Override
    public Violation check(int partition, SqlEvent event) {
        String norm = normalize(event.sql());
        Count count = windows.get(partition, new Key(event.app(), norm), event.producedAt());
        if (count == null) {
            return null;
        }
        count.n++;
        long window = event.producedAt() / config.getWindowMs();
        String shown = norm.length() > 200 ? norm.substring(0, 200) : norm;
        if (count.n == config.getCritical() + 1) {
            return Violation.of(NAME, event, Severity.CRITICAL, "app " + event.app() + ": " + count.n
                    + " runs in window " + window + " > critical " + config.getCritical() + ": " + shown);
        }
        if (count.n == config.getThreshold() + 1 && config.getThreshold() < config.getCritical()) {
            return Violation.of(NAME, event, Severity.WARNING, "app " + event.app() + ": " + count.n
                    + " runs in window " + window + " > threshold " + config.getThreshold() + ": " + shown);
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
