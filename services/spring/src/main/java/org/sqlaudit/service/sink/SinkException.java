package org.sqlaudit.service.sink;

/** A write or query of {@code sink} failed: the batch must be retried, never dropped. */
public class SinkException extends RuntimeException {

    private final String sink;

    public SinkException(String sink, String message, Throwable cause) {
        super(sink + ": " + message, cause);
        this.sink = sink;
    }

    /** {@code clickhouse}, {@code postgres} or {@code dlq}. */
    public String sink() {
        return sink;
    }
}
