package org.sqlaudit.service.sink;

import java.nio.charset.StandardCharsets;
import java.util.List;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;

import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer;
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer.HeaderNames;
import org.springframework.stereotype.Component;

import org.sqlaudit.service.config.SqlAuditProperties;
import org.sqlaudit.service.event.InvalidEventException;

/**
 * Invalid records to the dead-letter topic, byte for byte with their key, through spring-kafka's
 * {@link DeadLetterPublishingRecoverer}, which waits for each acknowledgement. Besides spring-kafka's
 * {@code kafka_dlt-*} headers (the stack trace left out), each letter carries the event contract's headers
 * (docs/events.md): {@code dlq.reason}, {@code dlq.topic}, {@code dlq.partition}, {@code dlq.offset},
 * {@code dlq.replica}, {@code dlq.failed_at_ms}. The partition is chosen by the producer from the key.
 */
@Component
public class DeadLetterSink {

    /** Sink name: the {@code sink} metric tag. */
    public static final String NAME = "dlq";

    /** An invalid record and why it is invalid. */
    public record Letter(ConsumerRecord<byte[], byte[]> record, InvalidEventException reason) {
    }

    private final DeadLetterPublishingRecoverer recoverer;
    private final String topic;

    public DeadLetterSink(KafkaTemplate<byte[], byte[]> template, SqlAuditProperties props) {
        this.topic = props.getDlq().getTopic();
        String replica = props.getReplica();
        this.recoverer = new DeadLetterPublishingRecoverer(template, (rec, exc) -> new TopicPartition(topic, -1));
        this.recoverer.excludeHeader(HeaderNames.HeadersToAdd.EX_STACKTRACE);
        this.recoverer.setWaitForSendResultTimeout(props.getDlq().getTimeout());
        this.recoverer.setHeadersFunction((rec, exc) -> {
            RecordHeaders h = new RecordHeaders();
            String reason = exc instanceof InvalidEventException inv ? inv.reason() : String.valueOf(exc);
            byte[] why = reason.getBytes(StandardCharsets.UTF_8);
            h.add("dlq.reason", why.length > 1024 ? java.util.Arrays.copyOf(why, 1024) : why);
            h.add("dlq.topic", rec.topic().getBytes(StandardCharsets.UTF_8));
            h.add("dlq.partition", Integer.toString(rec.partition()).getBytes(StandardCharsets.UTF_8));
            h.add("dlq.offset", Long.toString(rec.offset()).getBytes(StandardCharsets.UTF_8));
            h.add("dlq.replica", replica.getBytes(StandardCharsets.UTF_8));
            h.add("dlq.failed_at_ms", Long.toString(System.currentTimeMillis()).getBytes(StandardCharsets.UTF_8));
            return h;
        });
    }

    /**
     * Publishes {@code letters} and waits for every acknowledgement.
     *
     * @throws SinkException when one was not acknowledged (all are published again on the next attempt)
     */
    public void write(List<Letter> letters) {
        for (Letter letter : letters) {
            try {
                recoverer.accept(letter.record(), null, letter.reason());
            }
            catch (RuntimeException exc) {
                throw new SinkException(NAME, letters.size() + " dead letters to " + topic + " not acknowledged: "
                        + exc.getClass().getSimpleName() + ": " + exc.getMessage(), exc);
            }
        }
    }
}
