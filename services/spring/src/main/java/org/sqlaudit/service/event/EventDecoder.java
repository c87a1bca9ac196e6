package org.sqlaudit.service.event;

import java.io.IOException;
import java.math.BigInteger;
import java.util.Locale;
import java.util.UUID;
import java.util.regex.Pattern;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import org.sqlaudit.service.event.InvalidEventException.Kind;

/**
 * Decodes one Kafka record value into a {@link SqlEvent}, with the validation rules of the event
 * contract v1 (docs/events.md) and the Python reference service: strict JSON types ({@code "12"},
 * {@code true} and {@code 12.0} are not integers), unknown fields ignored, the first invalid field (in
 * contract order) named in the reason. A valid event that the stores cannot hold (Int64 or DateTime
 * overflow, a NUL character) is rejected too, so it is dead-lettered instead of blocking its partition.
 *
 * <p>Thread-safe and stateless.
 */
public final class EventDecoder {

    /** ClickHouse DateTime is UInt32 seconds: the last storable millisecond is below this. */
    public static final long DATETIME_MAX_MS = 4294967295L * 1000L;
    /** ClickHouse {@code duration_ms} is UInt32: larger values are stored clamped. */
    public static final long UINT32_MAX = 4294967295L;

    private static final BigInteger LONG_MAX = BigInteger.valueOf(Long.MAX_VALUE);
    private static final String SQL_TYPES = "'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'DDL' or 'OTHER'";
    private static final Pattern HEX32 = Pattern.compile("[0-9a-fA-F]{32}");
    private static final Pattern HYPHENATED =
            Pattern.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");

    private final ObjectMapper mapper = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    /**
     * Parses and validates {@code raw}.
     *
     * @param raw the record value; {@code null} for a tombstone
     * @return the event
     * @throws InvalidEventException naming why the record is not a storable v1 event
     */
    public SqlEvent decode(byte[] raw) throws InvalidEventException {
        if (raw == null) {
            throw new InvalidEventException(Kind.EMPTY, "empty message (tombstone)");
        }
        if (raw.length >= 3 && (raw[0] & 0xff) == 0xef && (raw[1] & 0xff) == 0xbb && (raw[2] & 0xff) == 0xbf) {
            throw new InvalidEventException(Kind.NOT_JSON, "not JSON: byte order mark before the value");
        }
        JsonNode root;
        try {
            root = mapper.readTree(raw);
        }
        catch (JsonProcessingException exc) {
            throw new InvalidEventException(Kind.NOT_JSON, "not JSON: " + exc.getOriginalMessage());
        }
        catch (IOException exc) {
            throw new InvalidEventException(Kind.NOT_JSON, "not JSON: " + exc.getMessage());
        }
        if (root == null || root.isMissingNode()) {
            throw new InvalidEventException(Kind.NOT_JSON, "not JSON: EOF while parsing a value");
        }
        if (!root.isObject()) {
            throw invalid("not a JSON object");
        }
        schemaVersion(root.get("schema_version"));
        UUID eventId = uuid("event_id", root.get("event_id"));
        String app = string("app", root.get("app"), 1, 128, false);
        String database = string("database", root.get("database"), 1, 128, false);
        String sql = string("sql", root.get("sql"), 1, 65536, false);
        SqlType sqlType = sqlType(root.get("sql_type"));
        BigInteger duration = nonNegative("duration_ms", root.get("duration_ms"));
        BigInteger rows = nonNegative("rows_affected", root.get("rows_affected"));
        String errorCode = string("error_code", root.get("error_code"), 0, 64, true);
        BigInteger producedAt = nonNegative("produced_at", root.get("produced_at"));

        // Storable? (the Python service's ``unstorable``, same order and wording)
        if (rows.compareTo(LONG_MAX) > 0) {
            throw invalid("field rows_affected: larger than Int64 (not storable)");
        }
        if (producedAt.compareTo(BigInteger.valueOf(DATETIME_MAX_MS)) >= 0) {
            throw invalid("field produced_at: after 2106-02-07, outside ClickHouse DateTime (not storable)");
        }
        String[][] texts = {{"app", app}, {"database", database}, {"sql", sql}, {"error_code", errorCode}};
        for (String[] t : texts) {
            if (t[1] != null && t[1].indexOf('\0') >= 0) {
                throw invalid("field " + t[0] + ": contains a NUL character (not storable)");
            }
        }
        long durationMs = duration.compareTo(LONG_MAX) > 0 ? Long.MAX_VALUE : duration.longValueExact();
        return new SqlEvent(eventId, app, database, sql, sqlType, durationMs, rows.longValueExact(), errorCode,
                producedAt.longValueExact());
    }

    private static InvalidEventException invalid(String reason) {
        return new InvalidEventException(Kind.INVALID_FIELD, reason);
    }

    private static InvalidEventException field(String name, String message) {
        return invalid("field " + name + ": " + message);
    }

    /** {@code schema_version}: optional, and equal to 1 (the Python model's {@code Literal[1]} also takes 1.0 and true). */
    private static void schemaVersion(JsonNode node) throws InvalidEventException {
        if (node == null) {
            return;
        }
        boolean one = (node.isNumber() && node.decimalValue().compareTo(java.math.BigDecimal.ONE) == 0)
                || (node.isBoolean() && node.booleanValue());
        if (!one) {
            throw field("schema_version", "Input should be 1");
        }
    }

    private static UUID uuid(String name, JsonNode node) throws InvalidEventException {
        if (node == null) {
            throw field(name, "Field required");
        }
        if (!node.isTextual()) {
            throw field(name, "UUID input should be a string, bytes or UUID object");
        }
        String s = node.textValue();
        String hyphenated = null;
        if (HYPHENATED.matcher(s).matches()) {
            hyphenated = s;
        }
        else if (HEX32.matcher(s).matches()) {
            hyphenated = s.substring(0, 8) + "-" + s.substring(8, 12) + "-" + s.substring(12, 16) + "-"
                    + s.substring(16, 20) + "-" + s.substring(20);
        }
        else if (s.length() == 38 && s.startsWith("{") && s.endsWith("}")
                && HYPHENATED.matcher(s.substring(1, 37)).matches()) {
            hyphenated = s.substring(1, 37);
        }
        else if (s.length() == 45 && s.regionMatches(true, 0, "urn:uuid:", 0, 9)
                && HYPHENATED.matcher(s.substring(9)).matches()) {
            hyphenated = s.substring(9);
        }
        if (hyphenated == null) {
            throw field(name, "Input should be a valid UUID");
        }
        return UUID.fromString(hyphenated.toLowerCase(Locale.ROOT));
    }

    private static String string(String name, JsonNode node, int min, int max, boolean nullable)
            throws InvalidEventException {
        if (node == null) {
            if (nullable) {
                return null;
            }
            throw field(name, "Field required");
        }
        if (node.isNull() && nullable) {
            return null;
        }
        if (!node.isTextual()) {
            throw field(name, "Input should be a valid string");
        }
        String s = node.textValue();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            }
            else if (Character.isSurrogate(c)) {
                // The Python reference rejects a lone surrogate escape while parsing the JSON.
                throw new InvalidEventException(Kind.NOT_JSON, "not JSON: lone surrogate in the string of " + name);
            }
        }
        int length = s.codePointCount(0, s.length());  // characters as Python counts them
        if (length < min) {
            throw field(name, "String should have at least " + min + " character" + (min == 1 ? "" : "s"));
        }
        if (length > max) {
            throw field(name, "String should have at most " + max + " characters");
        }
        return s;
    }

    private static SqlType sqlType(JsonNode node) throws InvalidEventException {
        if (node == null) {
            throw field("sql_type", "Field required");
        }
        if (node.isTextual()) {
            for (SqlType t : SqlType.values()) {
                if (t.name().equals(node.textValue())) {
                    return t;
                }
            }
        }
        throw field("sql_type", "Input should be " + SQL_TYPES);
    }

    private static BigInteger nonNegative(String name, JsonNode node) throws InvalidEventException {
        if (node == null) {
            throw field(name, "Field required");
        }
        if (!node.isIntegralNumber()) {
            throw field(name, "Input should be a valid integer");
        }
        BigInteger value = node.bigIntegerValue();
        if (value.signum() < 0) {
            throw field(name, "Input should be greater than or equal to 0");
        }
        return value;
    }
}
