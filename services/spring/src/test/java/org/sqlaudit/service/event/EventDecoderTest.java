package org.sqlaudit.service.event;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The contract's validation rules (docs/events.md), case by case as the Python service decides them. */
class EventDecoderTest {

    private static final String ID = "3b4f1c9e-8f1e-4a52-9c55-1f6f0f8a2c11";
    private final EventDecoder decoder = new EventDecoder();
    private final ObjectMapper mapper = new ObjectMapper();

    private Map<String, Object> base() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("schema_version", 1);
        m.put("event_id", ID);
        m.put("app", "billing");
        m.put("database", "shop");
        m.put("sql", "UPDATE stock SET n = n - 1 WHERE sku = 'A-12'");
        m.put("sql_type", "UPDATE");
        m.put("duration_ms", 12);
        m.put("rows_affected", 1);
        m.put("error_code", null);
        m.put("produced_at", 1795763589123L);
        return m;
    }

    private byte[] json(Map<String, Object> m) throws Exception {
        return mapper.writeValueAsBytes(m);
    }

    private InvalidEventException reject(byte[] raw) {
        return assertThrows(InvalidEventException.class, () -> decoder.decode(raw));
    }

    private InvalidEventException reject(String field, Object value) throws Exception {
        Map<String, Object> m = base();
        m.put(field, value);
        return reject(json(m));
    }

    @Test
    void validEventDecodes() throws Exception {
        SqlEvent e = decoder.decode(json(base()));
        assertEquals(UUID.fromString(ID), e.eventId());
        assertEquals("billing", e.app());
        assertEquals(SqlType.UPDATE, e.sqlType());
        assertEquals(12, e.durationMs());
        assertNull(e.errorCode());
        assertEquals(1795763589123L, e.producedAt());
    }

    @Test
    void unknownFieldsAreIgnoredAndOptionalFieldsMayBeAbsent() throws Exception {
        Map<String, Object> m = base();
        m.remove("schema_version");
        m.remove("error_code");
        m.put("future_field", Map.of("x", 1));
        assertEquals("billing", decoder.decode(json(m)).app());
    }

    @Test
    void tombstoneIsEmpty() {
        InvalidEventException exc = reject((byte[]) null);
        assertEquals(InvalidEventException.Kind.EMPTY, exc.kind());
        assertEquals("empty message (tombstone)", exc.reason());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {"''", "'{\"event_id\": \"not-closed'", "'{\"a\":1} x'", "'{'"})
    void brokenJsonIsNotJson(String raw) {
        InvalidEventException exc = reject(raw.getBytes(StandardCharsets.UTF_8));
        assertEquals(InvalidEventException.Kind.NOT_JSON, exc.kind());
        assertTrue(exc.reason().startsWith("not JSON"), exc.reason());
    }

    @Test
    void invalidUtf8IsNotJson() {
        assertEquals(InvalidEventException.Kind.NOT_JSON, reject(new byte[] {'"', (byte) 0xff, '"'}).kind());
    }

    @ParameterizedTest
    @CsvSource({"[]", "1", "null", "'\"x\"'"})
    void notAnObjectIsAnInvalidField(String raw) {
        InvalidEventException exc = reject(raw.getBytes(StandardCharsets.UTF_8));
        assertEquals(InvalidEventException.Kind.INVALID_FIELD, exc.kind());
        assertEquals("not a JSON object", exc.reason());
    }

    @Test
    void missingFieldIsNamed() throws Exception {
        Map<String, Object> m = base();
        m.remove("duration_ms");
        InvalidEventException exc = reject(json(m));
        assertEquals(InvalidEventException.Kind.INVALID_FIELD, exc.kind());
        assertEquals("field duration_ms: Field required", exc.reason());
    }

    @Test
    void firstInvalidFieldInContractOrderIsReported() throws Exception {
        Map<String, Object> m = base();
        m.remove("database");
        m.remove("sql");
        assertEquals("field database: Field required", reject(json(m)).reason());
    }

    @Test
    void integersAreStrict() throws Exception {
        assertEquals("field rows_affected: Input should be a valid integer", reject("rows_affected", "1").reason());
        assertEquals("field duration_ms: Input should be a valid integer", reject("duration_ms", true).reason());
        assertEquals("field duration_ms: Input should be a valid integer", reject("duration_ms", 12.0).reason());
        assertEquals("field duration_ms: Input should be a valid integer",
                reject("{\"event_id\":\"" + ID + "\",\"app\":\"a\",\"database\":\"d\",\"sql\":\"s\",\"sql_type\":"
                        + "\"SELECT\",\"duration_ms\":1e3,\"rows_affected\":1,\"produced_at\":1}").reason());
        assertEquals("field produced_at: Input should be greater than or equal to 0",
                reject("produced_at", -1).reason());
    }

    private InvalidEventException reject(String raw) {
        return reject(raw.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void stringsAreStrictAndBounded() throws Exception {
        assertEquals("field app: Input should be a valid string", reject("app", 5).reason());
        assertEquals("field app: Input should be a valid string", reject("app", null).reason());
        assertEquals("field app: String should have at least 1 character", reject("app", "").reason());
        assertEquals("field app: String should have at most 128 characters", reject("app", "x".repeat(129)).reason());
        assertEquals("field error_code: String should have at most 64 characters",
                reject("error_code", "x".repeat(65)).reason());
        assertEquals("field error_code: Input should be a valid string", reject("error_code", 5).reason());
    }

    @Test
    void lengthCountsCharactersNotUtf16Units() throws Exception {
        Map<String, Object> m = base();
        m.put("app", "\uD83D\uDE00".repeat(128));  // 128 emoji: 256 UTF-16 units, valid in Python
        assertEquals(256, decoder.decode(json(m)).app().length());
    }

    @Test
    void sqlTypeIsAnExactEnumValue() throws Exception {
        assertEquals("field sql_type: Input should be 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'DDL' or 'OTHER'",
                reject("sql_type", "select").reason());
    }

    @Test
    void schemaVersionMustBeOne() throws Exception {
        assertEquals("field schema_version: Input should be 1", reject("schema_version", 2).reason());
        assertEquals("field schema_version: Input should be 1", reject("schema_version", null).reason());
        // The Python model's Literal[1] compares by value: 1.0 and true pass there, so they pass here.
        Map<String, Object> m = base();
        m.put("schema_version", 1.0);
        decoder.decode(json(m));
        m.put("schema_version", true);
        decoder.decode(json(m));
    }

    @ParameterizedTest
    @CsvSource({"3b4f1c9e8f1e4a529c551f6f0f8a2c11", "{3b4f1c9e-8f1e-4a52-9c55-1f6f0f8a2c11}",
            "urn:uuid:3b4f1c9e-8f1e-4a52-9c55-1f6f0f8a2c11", "3B4F1C9E-8F1E-4A52-9C55-1F6F0F8A2C11"})
    void uuidFormsPythonAccepts(String id) throws Exception {
        Map<String, Object> m = base();
        m.put("event_id", id);
        assertEquals(UUID.fromString(ID), decoder.decode(json(m)).eventId());
    }

    @ParameterizedTest
    @CsvSource({"3b4f1c9e-8f1e4a52-9c55-1f6f0f8a2c11", "3b4f1c9e-8f1e-4a52-9c55-1f6f0f8a2c1",
            "' 3b4f1c9e-8f1e-4a52-9c55-1f6f0f8a2c11'", "1-1-1-1-1"})
    void malformedUuidsAreRejected(String id) throws Exception {
        assertTrue(reject("event_id", id).reason().startsWith("field event_id: Input should be a valid UUID"));
    }

    @Test
    void uuidMustBeAString() throws Exception {
        assertEquals("field event_id: UUID input should be a string, bytes or UUID object",
                reject("event_id", 5).reason());
    }

    @Test
    void unstorableValuesAreRejectedLikeThePythonSink() throws Exception {
        assertEquals("field rows_affected: larger than Int64 (not storable)",
                reject("rows_affected", new java.math.BigInteger("9223372036854775808")).reason());
        assertEquals("field produced_at: after 2106-02-07, outside ClickHouse DateTime (not storable)",
                reject("produced_at", 4294967295000L).reason());
        assertEquals("field sql: contains a NUL character (not storable)", reject("sql", "SELECT 'a\0b'").reason());
    }

    @Test
    void hugeDurationSaturatesAndIsValid() throws Exception {
        Map<String, Object> m = base();
        m.put("duration_ms", new java.math.BigInteger("1000000000000000000000000000000"));
        assertEquals(Long.MAX_VALUE, decoder.decode(json(m)).durationMs());
    }

    @Test
    void loneSurrogateIsNotJson() {
        String raw = "{\"event_id\":\"" + ID + "\",\"app\":\"\\ud800\",\"database\":\"d\",\"sql\":\"s\","
                + "\"sql_type\":\"SELECT\",\"duration_ms\":1,\"rows_affected\":1,\"produced_at\":1}";
        assertEquals(InvalidEventException.Kind.NOT_JSON, reject(raw).kind());
    }

    @Test
    void lastDuplicateKeyWins() throws Exception {
        String raw = "{\"event_id\":\"" + ID + "\",\"app\":\"a\",\"database\":\"d\",\"sql\":\"s\","
                + "\"sql_type\":\"SELECT\",\"duration_ms\":1,\"rows_affected\":1,\"produced_at\":1,\"app\":\"b\"}";
        assertEquals("b", decoder.decode(raw.getBytes(StandardCharsets.UTF_8)).app());
    }
}
