package org.sqlaudit.service.checker;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.sqlaudit.service.config.CheckersProperties;
import org.sqlaudit.service.event.SqlEvent;

/**
 * Runs every enabled checker (SlowQuery, ActualImpact, ErrorRate, Frequency, in that order) over a batch in
 * consumption order, and times each checker. Methods are synchronised: with listener concurrency above 1
 * several consumer threads share one engine (their partitions, hence their window state, are disjoint).
 */
public final class CheckerEngine {

    /** An event and the partition it was read from. */
    public record Item(int partition, SqlEvent event) {
    }

    /** The violations of a batch and, per checker name, the nanoseconds it spent on the batch. */
    public record Result(List<Violation> violations, Map<String, Long> nanos) {
    }

    private final List<Checker> checkers;

    public CheckerEngine(CheckersProperties config) {
        List<Checker> list = new ArrayList<>();
        if (config.getSlowQuery().isEnabled()) {
            list.add(new SlowQueryChecker(config.getSlowQuery()));
        }
        if (config.getActualImpact().isEnabled()) {
            list.add(new ActualImpactChecker(config.getActualImpact()));
        }
        if (config.getErrorRate().isEnabled()) {
            list.add(new ErrorRateChecker(config.getErrorRate(), config.getStateRetentionMs()));
        }
        if (config.getFrequency().isEnabled()) {
            list.add(new FrequencyChecker(config.getFrequency(), config.getStateRetentionMs()));
        }
        this.checkers = List.copyOf(list);
    }

    public List<Checker> checkers() {
        return checkers;
    }

    /** Checks {@code items} (in consumption order) with every checker. */
    public synchronized Result evaluate(List<Item> items) {
        List<Violation> violations = new ArrayList<>();
        Map<String, Long> nanos = new LinkedHashMap<>();
        for (Checker checker : checkers) {
            long t0 = System.nanoTime();
            for (Item item : items) {
                Violation v = checker.check(item.partition(), item.event());
                if (v != null) {
                    violations.add(v);
                }
            }
            nanos.put(checker.name(), System.nanoTime() - t0);
        }
        return new Result(violations, nanos);
    }

    /** Drops the window state of {@code partitions} (revoked: their next owner rebuilds it). */
    public synchronized void forget(Collection<Integer> partitions) {
        checkers.forEach(c -> c.forget(partitions));
    }

    /** Late events ignored so far, per window checker. */
    public synchronized Map<String, Long> lateEvents() {
        Map<String, Long> out = new LinkedHashMap<>();
        checkers.forEach(c -> out.put(c.name(), c.lateEvents()));
        return out;
    }
}
