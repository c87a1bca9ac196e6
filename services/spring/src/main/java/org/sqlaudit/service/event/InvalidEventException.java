package org.sqlaudit.service.event;

/**
 * A Kafka record that is not a storable v1 event. {@link #reason()} says why (it becomes the
 * {@code dlq.reason} header); {@link #kind()} is the {@code reason} tag of {@code sqlaudit.events.failed}.
 */
public class InvalidEventException extends Exception {

    /** Why a record is invalid, as a metric tag value. */
    public enum Kind {
        NOT_JSON("not_json"), INVALID_FIELD("invalid_field"), EMPTY("empty");

        private final String tag;

        Kind(String tag) {
            this.tag = tag;
        }

        public String tag() {
            return tag;
        }
    }

    private final Kind kind;

    public InvalidEventException(Kind kind, String reason) {
        super(reason, null, false, false);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    public String reason() {
        return getMessage();
    }
}
