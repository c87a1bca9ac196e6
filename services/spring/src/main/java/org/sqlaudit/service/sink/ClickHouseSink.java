package org.sqlaudit.service.sink;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.StringReader;
import java.io.BufferedReader;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.springframework.stereotype.Component;

import org.sqlaudit.service.config.SqlAuditProperties;
import org.sqlaudit.service.event.EventDecoder;
import org.sqlaudit.service.event.SqlEvent;

/**
 * Every valid event into {@code <database>.<table>}, the table of the Python service
 * (sqlaudit/schema/clickhouse.sql: {@code audit_events}, a ReplacingMergeTree on {@code event_id}, times as
 * epoch milliseconds; on a sharded cluster the {@code Distributed} table over it, written synchronously),
 * over ClickHouse's HTTP interface: {@code INSERT ... FORMAT JSONEachRow}, one request per batch.
 *
 * <p>The JDK's HTTP client is used because ClickHouse 18.16 (Debian's) speaks no protocol revision the
 * current ClickHouse Java clients accept, while its HTTP interface takes plain JSON rows. Several URLs are
 * replicas: a failed request moves the sink to the next one (the batch is retried there by the listener's
 * backoff), and it stays there until that one fails. Thread-safe.
 */
@Component
public class ClickHouseSink {

    /** Sink name: the {@code sink} metric tag. */
    public static final String NAME = "clickhouse";
    /** Columns written, in the table's order. */
    public static final List<String> COLUMNS = List.of("event_id", "app", "database", "sql", "sql_type",
            "duration_ms", "rows_affected", "error_code", "produced_at_ms", "stored_at_ms", "produced_date",
            "kafka_partition", "kafka_offset", "replica");
    private static final Duration PING_TIMEOUT = Duration.ofSeconds(1);
    private static final Logger log = LoggerFactory.getLogger(ClickHouseSink.class);

    private final HttpClient http;
    private final List<URI> urls;
    private final String database;
    private final String table;
    private final String replica;
    private final String authorization;
    private final Duration timeout;
    private final String insert;  // the INSERT statement, URL-encoded
    private final JsonFactory json = new JsonFactory();
    private final ObjectMapper mapper = new ObjectMapper();
    private volatile int current;

    public ClickHouseSink(SqlAuditProperties props) {
        SqlAuditProperties.ClickHouse ch = props.getClickhouse();
        this.urls = List.copyOf(ch.getUrls());
        this.database = ch.getDatabase();
        this.table = ch.getTable();
        this.replica = props.getReplica();
        this.timeout = ch.getTimeout();
        this.authorization = ch.getUser() == null || ch.getUser().isEmpty() ? null : "Basic " + Base64.getEncoder()
                .encodeToString((ch.getUser() + ":" + ch.getPassword()).getBytes(StandardCharsets.UTF_8));
        // HTTP/1.1 only: an h2c upgrade request is not something an 18.16 server expects.
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(ch.getConnectTimeout()).build();
        this.insert = URLEncoder.encode("INSERT INTO " + database + "." + table + " (" + String.join(", ", COLUMNS)
                + ") FORMAT JSONEachRow", StandardCharsets.UTF_8);
    }

    /** The table events are written to and read from, qualified by its database. */
    public String table() {
        return database + "." + table;
    }

    /** The replica the next request goes to. */
    public URI currentUrl() {
        return urls.get(current);
    }

    /**
     * Inserts {@code rows} in one request.
     *
     * @throws SinkException when ClickHouse did not acknowledge the insert; the next attempt goes to the next URL
     */
    public void write(List<EventRow> rows) {
        if (rows.isEmpty()) {
            return;
        }
        byte[] body = encode(rows, System.currentTimeMillis());
        int index = current;
        URI url = urls.get(index);
        try {
            // insert_distributed_sync: an insert into a Distributed table returns once every shard holds its
            // rows, not when they are queued on the receiving server (no effect on a plain table).
            send(url, "query=" + insert + "&insert_distributed_sync=1", HttpRequest.BodyPublishers.ofByteArray(body),
                    timeout);
        }
        catch (IOException | InterruptedException | RuntimeException exc) {
            if (exc instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            failOver(index);
            throw new SinkException(NAME, "insert of " + rows.size() + " rows at " + url + " failed: "
                    + describe(exc), exc);
        }
    }

    /**
     * Runs a read-only query and returns its rows ({@code FORMAT JSONEachRow} is appended).
     *
     * @throws SinkException when ClickHouse did not answer
     */
    public List<JsonNode> query(String sql) {
        int index = current;
        URI url = urls.get(index);
        String text;
        try {
            text = send(url, null, HttpRequest.BodyPublishers.ofString(sql + " FORMAT JSONEachRow"), timeout);
        }
        catch (IOException | InterruptedException | RuntimeException exc) {
            if (exc instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            failOver(index);
            throw new SinkException(NAME, "query at " + url + " failed: " + describe(exc), exc);
        }
        List<JsonNode> out = new ArrayList<>();
        try (BufferedReader lines = new BufferedReader(new StringReader(text))) {
            String line;
            while ((line = lines.readLine()) != null) {
                if (!line.isBlank()) {
                    out.add(mapper.readTree(line));
                }
            }
        }
        catch (IOException exc) {
            throw new SinkException(NAME, "unreadable answer from " + url + ": " + exc.getMessage(), exc);
        }
        return out;
    }

    /**
     * {@code SELECT 1} at the current replica with a 1 s timeout.
     *
     * @throws SinkException when it does not answer
     */
    public void ping() {
        URI url = urls.get(current);
        try {
            send(url, null, HttpRequest.BodyPublishers.ofString("SELECT 1"), PING_TIMEOUT);
        }
        catch (IOException | InterruptedException | RuntimeException exc) {
            if (exc instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            throw new SinkException(NAME, "ping of " + url + " failed: " + describe(exc), exc);
        }
    }

    /** POSTs {@code body} to {@code base}; {@code params}: more URL parameters, already encoded, or null. */
    private String send(URI base, String params, HttpRequest.BodyPublisher body, Duration limit)
            throws IOException, InterruptedException {
        String uri = base.toString().replaceAll("/+$", "") + "/?database="
                + URLEncoder.encode(database, StandardCharsets.UTF_8) + (params == null ? "" : "&" + params);
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(uri)).timeout(limit).POST(body);
        if (authorization != null) {
            req.header("Authorization", authorization);
        }
        HttpResponse<String> resp = http.send(req.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        if (resp.statusCode() != 200) {
            String text = resp.body() == null ? "" : resp.body().strip();
            throw new IOException("HTTP " + resp.statusCode() + ": " + (text.length() > 300 ? text.substring(0, 300)
                    : text));
        }
        return resp.body();
    }

    private void failOver(int failed) {
        if (urls.size() > 1) {
            synchronized (this) {
                if (current == failed) {
                    current = (failed + 1) % urls.size();
                    log.info("clickhouse: next attempt starts at {}", urls.get(current));
                }
            }
        }
    }

    private static String describe(Exception exc) {
        String msg = exc.getMessage();
        return exc.getClass().getSimpleName() + (msg == null || msg.isBlank() ? "" : ": " + msg);
    }

    /** The JSONEachRow body of {@code rows}, as the Python sink stores them. */
    byte[] encode(List<EventRow> rows, long storedAtMs) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(rows.size() * 256);
        try (JsonGenerator g = json.createGenerator(out)) {
            g.setRootValueSeparator(null);
            for (EventRow r : rows) {
                SqlEvent e = r.event();
                g.writeStartObject();
                g.writeStringField("event_id", e.eventId().toString());
                g.writeStringField("app", e.app());
                g.writeStringField("database", e.database());
                g.writeStringField("sql", e.sql());
                g.writeStringField("sql_type", e.sqlType().name());
                g.writeNumberField("duration_ms", Math.min(e.durationMs(), EventDecoder.UINT32_MAX));
                g.writeNumberField("rows_affected", e.rowsAffected());
                g.writeStringField("error_code", e.errorCode() == null ? "" : e.errorCode());
                g.writeNumberField("produced_at_ms", e.producedAt());
                g.writeNumberField("stored_at_ms", storedAtMs);
                g.writeNumberField("produced_date", e.producedAt() / 1000);  // DateTime from epoch seconds
                g.writeNumberField("kafka_partition", r.partition());
                g.writeNumberField("kafka_offset", r.offset());
                g.writeStringField("replica", replica);
                g.writeEndObject();
                g.writeRaw('\n');
            }
        }
        catch (IOException exc) {
            throw new IllegalStateException("encoding rows in memory cannot fail", exc);
        }
        return out.toByteArray();
    }
}
