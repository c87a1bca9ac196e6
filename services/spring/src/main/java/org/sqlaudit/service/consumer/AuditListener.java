package org.sqlaudit.service.consumer;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.listener.ConsumerAwareRebalanceListener;
import org.springframework.stereotype.Component;

import org.sqlaudit.service.checker.CheckerEngine;
import org.sqlaudit.service.checker.Violation;
import org.sqlaudit.service.event.EventDecoder;
import org.sqlaudit.service.event.InvalidEventException;
import org.sqlaudit.service.event.SqlEvent;
import org.sqlaudit.service.metrics.AuditMetrics;
import org.sqlaudit.service.sink.ClickHouseSink;
import org.sqlaudit.service.sink.DeadLetterSink;
import org.sqlaudit.service.sink.EventRow;
import org.sqlaudit.service.sink.PostgresSink;
import org.sqlaudit.service.sink.SinkException;

/**
 * The batch listener: decode, check, write ClickHouse, PostgreSQL and the dead letters, then return, and
 * only then does the container commit the batch's offsets (ack mode BATCH).
 *
 * <p>A failed write throws; the container's {@code DefaultErrorHandler} (see {@code KafkaConfig}) pauses the
 * partitions, keeps polling so the replica stays in the group, and calls the listener again with the same
 * records after an exponential backoff, forever: nothing is skipped or committed before it is durable. A
 * retried batch is recognised by its records, so the checkers see each record once and a sink that already
 * holds the batch is not written again.
 *
 * <p>On revocation the window state of the revoked partitions is dropped (their next owner starts counting
 * from the committed offset), as in the Python service.
 */
@Component
public class AuditListener implements ConsumerAwareRebalanceListener {

    private static final Logger log = LoggerFactory.getLogger(AuditListener.class);

    /** Records handed to the listener but not yet durable, and what has been written of them so far. */
    private static final class Pending {
        final String signature;
        final long createdNanos = System.nanoTime();
        final List<EventRow> rows = new ArrayList<>();
        final List<DeadLetterSink.Letter> letters = new ArrayList<>();
        List<Violation> violations = List.of();
        final Set<String> done = new HashSet<>();
        int attempts;

        Pending(String signature) {
            this.signature = signature;
        }
    }

    private final EventDecoder decoder = new EventDecoder();
    private final CheckerEngine engine;
    private final ClickHouseSink clickhouse;
    private final PostgresSink postgres;
    private final DeadLetterSink dlq;
    private final AuditMetrics metrics;
    private final ThreadLocal<Pending> pending = new ThreadLocal<>();

    public AuditListener(CheckerEngine engine, ClickHouseSink clickhouse, PostgresSink postgres, DeadLetterSink dlq,
                         AuditMetrics metrics) {
        this.engine = engine;
        this.clickhouse = clickhouse;
        this.postgres = postgres;
        this.dlq = dlq;
        this.metrics = metrics;
    }

    /**
     * Makes one polled batch durable.
     *
     * @param records the batch, in partition order
     * @throws SinkException when a store did not take it (the error handler retries the same batch)
     */
    @KafkaListener(id = "sqlaudit", idIsGroup = false, topics = "${sqlaudit.topic}", batch = "true")
    public void onBatch(List<ConsumerRecord<byte[], byte[]>> records) {
        if (records.isEmpty()) {
            return;
        }
        String signature = signature(records);
        Pending held = pending.get();
        if (held == null || !held.signature.equals(signature)) {
            held = prepare(records, signature);
            pending.set(held);
        }
        final Pending p = held;
        p.attempts++;
        try {
            write(p, ClickHouseSink.NAME, () -> clickhouse.write(p.rows), !p.rows.isEmpty());
            write(p, PostgresSink.NAME, () -> postgres.write(p.violations), !p.violations.isEmpty());
            write(p, DeadLetterSink.NAME, () -> dlq.write(p.letters), !p.letters.isEmpty());
        }
        catch (SinkException exc) {
            if (p.attempts == 1 || p.attempts % 10 == 0) {
                log.warn("write failed (attempt {}, {} records held, partitions paused until it succeeds): {}",
                        p.attempts, records.size(), exc.getMessage());
            }
            throw exc;
        }
        pending.remove();
        if (p.attempts > 1) {
            log.info("write succeeded after {} attempts; resuming consumption", p.attempts);
        }
        finish(p);
    }

    /** Decodes and checks a batch seen for the first time. */
    private Pending prepare(List<ConsumerRecord<byte[], byte[]>> records, String signature) {
        Pending p = new Pending(signature);
        List<CheckerEngine.Item> items = new ArrayList<>(records.size());
        for (ConsumerRecord<byte[], byte[]> rec : records) {
            try {
                SqlEvent event = decoder.decode(rec.value());
                p.rows.add(new EventRow(event, rec.partition(), rec.offset()));
                items.add(new CheckerEngine.Item(rec.partition(), event));
            }
            catch (InvalidEventException exc) {
                metrics.failed(exc.kind());
                log.warn("invalid record {}[{}]@{} -> dead-letter topic: {}", rec.topic(), rec.partition(),
                        rec.offset(), exc.reason());
                p.letters.add(new DeadLetterSink.Letter(rec, exc));
            }
        }
        CheckerEngine.Result result = engine.evaluate(items);
        p.violations = result.violations();
        result.nanos().forEach(metrics::checkerDuration);
        return p;
    }

    private void write(Pending p, String sink, Runnable action, boolean any) {
        if (p.done.contains(sink)) {
            return;
        }
        long t0 = System.nanoTime();
        try {
            action.run();
        }
        catch (RuntimeException exc) {
            if (any) {
                metrics.sinkWrite(sink, false, System.nanoTime() - t0);
            }
            throw exc instanceof SinkException s ? s : new SinkException(sink, exc.toString(), exc);
        }
        if (any) {
            metrics.sinkWrite(sink, true, System.nanoTime() - t0);
        }
        p.done.add(sink);
    }

    private void finish(Pending p) {
        long now = System.currentTimeMillis();
        long processing = System.nanoTime() - p.createdNanos;
        metrics.processed(p.rows.size());
        for (EventRow r : p.rows) {
            metrics.latency(now - r.event().producedAt(), processing);
        }
        for (Violation v : p.violations) {
            metrics.violation(v.checker(), v.severity().name());
        }
    }

    /** Identifies a batch by its records: per partition, first and last offset, and the count. */
    static String signature(List<ConsumerRecord<byte[], byte[]>> records) {
        Map<String, long[]> ranges = new LinkedHashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : records) {
            long[] range = ranges.computeIfAbsent(r.topic() + "-" + r.partition(),
                    k -> new long[] {r.offset(), r.offset()});
            range[1] = r.offset();
        }
        StringBuilder sb = new StringBuilder().append(records.size());
        ranges.forEach((tp, range) -> sb.append(' ').append(tp).append('@').append(range[0]).append('-')
                .append(range[1]));
        return sb.toString();
    }

    // ------------------------------------------------------------------ rebalance
    @Override
    public void onPartitionsRevokedBeforeCommit(Consumer<?, ?> consumer, Collection<TopicPartition> partitions) {
        forget(partitions, "revoked");
    }

    @Override
    public void onPartitionsLost(Consumer<?, ?> consumer, Collection<TopicPartition> partitions) {
        forget(partitions, "lost");
    }

    @Override
    public void onPartitionsAssigned(Consumer<?, ?> consumer, Collection<TopicPartition> partitions) {
        if (!partitions.isEmpty()) {
            log.info("partitions {} assigned", numbers(partitions));
        }
    }

    private void forget(Collection<TopicPartition> partitions, String how) {
        if (partitions.isEmpty()) {
            return;
        }
        Set<Integer> parts = numbers(partitions);
        engine.forget(parts);
        log.info("partitions {} {}; their window state dropped", parts, how);
    }

    private static Set<Integer> numbers(Collection<TopicPartition> partitions) {
        Set<Integer> out = new TreeSet<>();
        partitions.forEach(tp -> out.add(tp.partition()));
        return out;
    }
}
