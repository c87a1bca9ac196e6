package org.sqlaudit.service.metrics;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

import org.springframework.stereotype.Component;

import org.sqlaudit.service.checker.Checker;
import org.sqlaudit.service.checker.CheckerEngine;
import org.sqlaudit.service.event.InvalidEventException;

/**
 * The service's business metrics, named the Micrometer way (Prometheus names in brackets):
 *
 * <ul>
 *   <li>{@code sqlaudit.events.processed} [{@code sqlaudit_events_processed_total}]: valid events made durable;
 *   <li>{@code sqlaudit.events.failed}{reason} [{@code sqlaudit_events_failed_total}]: invalid records
 *       ({@code not_json}, {@code invalid_field}, {@code empty}), counted once per record and batch;
 *   <li>{@code sqlaudit.events.latency} [{@code sqlaudit_events_latency_seconds}]: per valid event,
 *       {@code produced_at} (producer clock) to durable; percentile histogram set in application.yml;
 *   <li>{@code sqlaudit.events.processing} [{@code sqlaudit_events_processing_seconds}]: per valid event,
 *       first handed to the listener to durable (waits, checks, writes, retries);
 *   <li>{@code sqlaudit.checker.duration}{checker} [{@code sqlaudit_checker_duration_seconds}]: one checker on one batch;
 *   <li>{@code sqlaudit.checker.violations}{checker, severity} [{@code sqlaudit_checker_violations_total}]:
 *       violations made durable;
 *   <li>{@code sqlaudit.checker.late.events}{checker} [{@code sqlaudit_checker_late_events_total}]: events a
 *       window checker ignored because their window was closed;
 *   <li>{@code sqlaudit.sink.write}{sink, outcome} [{@code sqlaudit_sink_write_seconds}]: one batch write to
 *       {@code clickhouse}, {@code postgres} or {@code dlq}, {@code outcome} {@code success} or {@code error}.
 * </ul>
 */
@Component
public class AuditMetrics {

    private final MeterRegistry registry;
    private final Counter processed;
    private final Timer latency;
    private final Timer processing;

    public AuditMetrics(MeterRegistry registry, CheckerEngine engine) {
        this.registry = registry;
        this.processed = Counter.builder("sqlaudit.events.processed")
                .description("Valid events made durable (ClickHouse and PostgreSQL) before their offsets were committed")
                .register(registry);
        for (InvalidEventException.Kind kind : InvalidEventException.Kind.values()) {
            failedCounter(kind);  // every reason exists from start, so rate() is defined before the first failure
        }
        for (Checker checker : engine.checkers()) {
            checkerTimer(checker.name());  // exists from start, so an alert over it has a series before the first batch
            FunctionCounter.builder("sqlaudit.checker.late.events", engine,
                            e -> e.lateEvents().getOrDefault(checker.name(), 0L))
                    .description("Events a window checker ignored because their window was closed")
                    .tag("checker", checker.name())
                    .register(registry);
        }
        for (String sink : new String[] {"clickhouse", "postgres", "dlq"}) {
            for (String outcome : new String[] {"success", "error"}) {
                sinkTimer(sink, outcome);
            }
        }
        this.latency = latencyTimer();
        this.processing = processingTimer();
    }

    private Counter failedCounter(InvalidEventException.Kind kind) {
        return Counter.builder("sqlaudit.events.failed")
                .description("Invalid records (sent to the dead-letter topic)")
                .tag("reason", kind.tag())
                .register(registry);
    }

    private Timer sinkTimer(String sink, String outcome) {
        return Timer.builder("sqlaudit.sink.write")
                .description("One batch write to a sink")
                .tag("sink", sink).tag("outcome", outcome)
                .register(registry);
    }

    private Timer latencyTimer() {
        return Timer.builder("sqlaudit.events.latency")
                .description("Per valid event: produced_at (producer clock) to durable in both stores")
                .register(registry);
    }

    private Timer processingTimer() {
        return Timer.builder("sqlaudit.events.processing")
                .description("Per valid event: handed to the listener to durable in both stores")
                .register(registry);
    }

    public void processed(int n) {
        processed.increment(n);
    }

    public void failed(InvalidEventException.Kind kind) {
        failedCounter(kind).increment();
    }

    private Timer checkerTimer(String checker) {
        return Timer.builder("sqlaudit.checker.duration")
                .description("Time one checker spent on one batch")
                .tag("checker", checker)
                .register(registry);
    }

    public void checkerDuration(String checker, long nanos) {
        checkerTimer(checker).record(nanos, TimeUnit.NANOSECONDS);
    }

    public void violation(String checker, String severity) {
        Counter.builder("sqlaudit.checker.violations")
                .description("Violations made durable in PostgreSQL")
                .tag("checker", checker).tag("severity", severity)
                .register(registry)
                .increment();
    }

    public void sinkWrite(String sink, boolean ok, long nanos) {
        sinkTimer(sink, ok ? "success" : "error").record(nanos, TimeUnit.NANOSECONDS);
    }

    /** Records the end-to-end and processing latency of one event made durable now. */
    public void latency(long endToEndMs, long processingNanos) {
        latency.record(Duration.ofMillis(Math.max(0, endToEndMs)));
        processing.record(processingNanos, TimeUnit.NANOSECONDS);
    }
}
