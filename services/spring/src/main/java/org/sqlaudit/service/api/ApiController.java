package org.sqlaudit.service.api;

import java.sql.Timestamp;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import com.fasterxml.jackson.databind.JsonNode;

import org.springframework.http.HttpStatus;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.server.ResponseStatusException;

import org.sqlaudit.service.checker.ActualImpactChecker;
import org.sqlaudit.service.checker.ErrorRateChecker;
import org.sqlaudit.service.checker.FrequencyChecker;
import org.sqlaudit.service.checker.SlowQueryChecker;
import org.sqlaudit.service.sink.ClickHouseSink;

/**
 * The read API (bearer token required, see {@code SecurityConfig}):
 *
 * <ul>
 *   <li>{@code GET /api/v1/events/{id}}: one stored event from ClickHouse (404 when absent);
 *   <li>{@code GET /api/v1/violations?checker=&app=&since=&limit=}: violations from PostgreSQL, newest
 *       detection first; {@code since} is an ISO-8601 instant or epoch milliseconds compared with
 *       {@code detected_at}; {@code limit} 1..1000, default 100.
 * </ul>
 * A bad parameter gets 400; a store that does not answer gets 503 ({@link ApiErrors}).
 */
@RestController
@RequestMapping("/api/v1")
public class ApiController {

    static final Set<String> CHECKERS = Set.of(SlowQueryChecker.NAME, ActualImpactChecker.NAME,
            ErrorRateChecker.NAME, FrequencyChecker.NAME);
    private static final String EVENT_COLUMNS = "toString(event_id) AS id, app, database, sql, sql_type, "
            + "duration_ms, rows_affected, error_code, produced_at_ms, stored_at_ms, kafka_partition, kafka_offset, "
            + "replica";

    private final ClickHouseSink clickhouse;
    private final JdbcTemplate jdbc;

    public ApiController(ClickHouseSink clickhouse, JdbcTemplate jdbc) {
        this.clickhouse = clickhouse;
        this.jdbc = jdbc;
    }

    @GetMapping("/events/{id}")
    public Map<String, Object> event(@PathVariable("id") UUID id) {
        // The id is a parsed UUID: its text is safe to put in the query. (An alias named event_id would
        // shadow the column in WHERE: ClickHouse resolves aliases there.)
        List<JsonNode> rows = clickhouse.query("SELECT " + EVENT_COLUMNS + " FROM " + clickhouse.table()
                + " WHERE event_id = toUUID('" + id + "') ORDER BY stored_at_ms DESC LIMIT 1");
        if (rows.isEmpty()) {
            throw new ResponseStatusException(HttpStatus.NOT_FOUND, "no event " + id);
        }
        JsonNode r = rows.get(0);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("event_id", r.path("id").asText());
        out.put("app", r.path("app").asText());
        out.put("database", r.path("database").asText());
        out.put("sql", r.path("sql").asText());
        out.put("sql_type", r.path("sql_type").asText());
        out.put("duration_ms", r.path("duration_ms").asLong());
        out.put("rows_affected", Long.parseLong(r.path("rows_affected").asText()));
        String error = r.path("error_code").asText();
        out.put("error_code", error.isEmpty() ? null : error);
        out.put("produced_at", Long.parseLong(r.path("produced_at_ms").asText()));
        out.put("stored_at_ms", Long.parseLong(r.path("stored_at_ms").asText()));
        out.put("kafka_partition", r.path("kafka_partition").asInt());
        out.put("kafka_offset", Long.parseLong(r.path("kafka_offset").asText()));
        out.put("replica", r.path("replica").asText());
        return out;
    }

    @GetMapping("/violations")
    public List<Map<String, Object>> violations(@RequestParam(name = "checker", required = false) String checker,
                                                @RequestParam(name = "app", required = false) String app,
                                                @RequestParam(name = "since", required = false) String since,
                                                @RequestParam(name = "limit", defaultValue = "100") int limit) {
        if (checker != null && !checker.isEmpty() && !CHECKERS.contains(checker)) {
            throw new ResponseStatusException(HttpStatus.BAD_REQUEST,
                    "checker: unknown " + checker + " (known: " + String.join(", ", CHECKERS.stream().sorted().toList())
                            + ")");
        }
        if (limit < 1 || limit > 1000) {
            throw new ResponseStatusException(HttpStatus.BAD_REQUEST, "limit: " + limit + " is outside 1..1000");
        }
        StringBuilder sql = new StringBuilder("SELECT event_id, checker, severity, app, database, message, "
                + "produced_at, detected_at, replica FROM violations WHERE true");
        List<Object> args = new ArrayList<>();
        if (checker != null && !checker.isEmpty()) {
            sql.append(" AND checker = ?");
            args.add(checker);
        }
        if (app != null && !app.isEmpty()) {
            sql.append(" AND app = ?");
            args.add(app);
        }
        if (since != null && !since.isEmpty()) {
            sql.append(" AND detected_at >= ?");
            args.add(Timestamp.from(parseSince(since)));
        }
        sql.append(" ORDER BY detected_at DESC, event_id LIMIT ?");
        args.add(limit);
        return jdbc.query(sql.toString(), (rs, i) -> {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("event_id", rs.getObject("event_id", UUID.class).toString());
            v.put("checker", rs.getString("checker"));
            v.put("severity", rs.getString("severity"));
            v.put("app", rs.getString("app"));
            v.put("database", rs.getString("database"));
            v.put("message", rs.getString("message"));
            v.put("produced_at", rs.getTimestamp("produced_at").toInstant().toString());
            v.put("detected_at", rs.getTimestamp("detected_at").toInstant().toString());
            v.put("replica", rs.getString("replica"));
            return v;
        }, args.toArray());
    }

    static Instant parseSince(String since) {
        try {
            if (since.chars().allMatch(Character::isDigit)) {
                return Instant.ofEpochMilli(Long.parseLong(since));
            }
            return Instant.parse(since);
        }
        catch (DateTimeParseException | NumberFormatException exc) {
            throw new ResponseStatusException(HttpStatus.BAD_REQUEST,
                    "since: " + since + " is neither an ISO-8601 instant (2025-01-31T12:00:00Z) nor epoch milliseconds");
        }
    }
}
