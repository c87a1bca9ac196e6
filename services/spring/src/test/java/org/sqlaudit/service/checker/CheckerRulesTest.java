package org.sqlaudit.service.checker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

import org.junit.jupiter.api.Test;

import org.sqlaudit.service.config.CheckersProperties;
import org.sqlaudit.service.event.SqlEvent;
import org.sqlaudit.service.event.SqlType;

/** The firing rules of docs/checkers.md, the same cases as the Python service's unit tests. */
class CheckerRulesTest {

    private static SqlEvent ev(String sql, SqlType type, long duration, long rows, String error, long producedAt) {
        return new SqlEvent(UUID.randomUUID(), "a", "d", sql, type, duration, rows, error, producedAt);
    }

    private static SqlEvent ev(String sql, String error, long producedAt) {
        return ev(sql, SqlType.SELECT, 1, 0, error, producedAt);
    }

    private static List<CheckerEngine.Item> on(int partition, List<SqlEvent> events) {
        return events.stream().map(e -> new CheckerEngine.Item(partition, e)).toList();
    }

    @Test
    void normalizeCollapsesLiteralsListsAndSpacing() {
        String a = SqlNormalizer.normalize("SELECT * FROM t1 WHERE id IN (1, 2, 3) AND name = 'O''Brien';");
        String b = SqlNormalizer.normalize("select *   from t1 where id in (7) and name = 'x'");
        assertEquals("select * from t1 where id in (?) and name = ?", a);
        assertEquals(a, b);
        assertTrue(!SqlNormalizer.normalize("SELECT * FROM t1").equals(SqlNormalizer.normalize("SELECT * FROM t2")));
        assertEquals("select v2_x, ? from t where x = ? and y = ?",
                SqlNormalizer.normalize("SELECT v2_x, -1.5 FROM t WHERE x = 1e3 AND y = 'a'';b' ;;"));
    }

    @Test
    void slowQueryIsStrictlyGreater() {
        SlowQueryChecker c = new SlowQueryChecker(new CheckersProperties.SlowQuery());
        assertNull(c.check(0, ev("s", SqlType.SELECT, 1000, 0, null, 1)));
        assertEquals(Severity.WARNING, c.check(0, ev("s", SqlType.SELECT, 1001, 0, null, 1)).severity());
        assertEquals(Severity.WARNING, c.check(0, ev("s", SqlType.SELECT, 5000, 0, null, 1)).severity());
        assertEquals(Severity.CRITICAL, c.check(0, ev("s", SqlType.SELECT, 5001, 0, null, 1)).severity());
    }

    @Test
    void actualImpactOnlyForUpdateAndDelete() {
        ActualImpactChecker c = new ActualImpactChecker(new CheckersProperties.ActualImpact());
        for (SqlType t : new SqlType[] {SqlType.SELECT, SqlType.INSERT, SqlType.DDL, SqlType.OTHER}) {
            assertNull(c.check(0, ev("s", t, 1, 100_000, null, 1)));
        }
        assertNull(c.check(0, ev("s", SqlType.UPDATE, 1, 1000, null, 1)));
        assertEquals(Severity.WARNING, c.check(0, ev("s", SqlType.DELETE, 1, 1001, null, 1)).severity());
        assertEquals(Severity.CRITICAL, c.check(0, ev("s", SqlType.UPDATE, 1, 10_001, null, 1)).severity());
    }

    @Test
    void errorRateFiresWarningThenCriticalOncePerWindow() {
        CheckersProperties cfg = new CheckersProperties();
        CheckerEngine engine = new CheckerEngine(cfg);
        long w0 = 10 * cfg.getErrorRate().getWindowMs();
        List<SqlEvent> events = new ArrayList<>();
        for (int i = 0; i < 60; i++) {
            events.add(ev("SELECT " + i, i % 3 != 0 ? "E" : null, w0 + i));
        }
        for (int i = 0; i < 200; i++) {
            events.add(ev("SELECT " + i, "E", w0 + 100 + i));
        }
        List<Violation> got = engine.evaluate(on(0, events)).violations().stream()
                .filter(v -> v.checker().equals("ErrorRate")).toList();
        assertEquals(List.of(Severity.WARNING, Severity.CRITICAL), got.stream().map(Violation::severity).toList());
        // 2/3 errors: the WARNING comes exactly at min_events.
        assertEquals(events.get(cfg.getErrorRate().getMinEvents() - 1).eventId(), got.get(0).eventId());
    }

    @Test
    void errorRateCriticalOnTheSuccessThatCrossesMinEvents() {
        CheckersProperties cfg = new CheckersProperties();
        CheckerEngine engine = new CheckerEngine(cfg);
        List<SqlEvent> events = new ArrayList<>();
        for (int i = 0; i < 19; i++) {
            events.add(ev("SELECT 1", "E", 5));
        }
        SqlEvent success = ev("SELECT 1", null, 6);
        events.add(success);
        List<Violation> got = engine.evaluate(on(0, events)).violations().stream()
                .filter(v -> v.checker().equals("ErrorRate")).toList();
        assertEquals(1, got.size());
        assertEquals(Severity.CRITICAL, got.get(0).severity());
        assertEquals(success.eventId(), got.get(0).eventId());
    }

    @Test
    void windowsArePerPartitionAndForgottenOnRevocation() {
        CheckersProperties cfg = new CheckersProperties();
        long threshold = cfg.getFrequency().getThreshold();
        CheckerEngine engine = new CheckerEngine(cfg);
        List<SqlEvent> events = new ArrayList<>();
        for (int i = 0; i < threshold; i++) {
            events.add(ev("SELECT * FROM t WHERE id = " + i, null, 1_000_000));
        }
        assertEquals(List.of(), engine.evaluate(on(0, events)).violations());
        engine.forget(List.of(0));  // revoked: the next owner starts from its committed offset
        assertEquals(List.of(), engine.evaluate(on(0, events.subList(0, 1))).violations());
        assertEquals(List.of(), engine.evaluate(on(1, events)).violations());  // another partition, another count
        SqlEvent extra = ev("SELECT * FROM t WHERE id = 999", null, 1_000_000);
        List<Violation> got = engine.evaluate(on(1, List.of(extra))).violations();
        assertEquals(1, got.size());
        assertEquals("Frequency", got.get(0).checker());
        assertEquals(Severity.WARNING, got.get(0).severity());
        assertEquals(extra.eventId(), got.get(0).eventId());
    }

    @Test
    void lateEventsAreIgnoredByWindowCheckers() {
        CheckersProperties cfg = new CheckersProperties();
        CheckerEngine engine = new CheckerEngine(cfg);
        List<SqlEvent> events = new ArrayList<>();
        events.add(ev("SELECT 1", null, 10_000_000));
        for (int i = 0; i < 200; i++) {
            events.add(ev("SELECT 1", "E", 10_000_000 - cfg.getStateRetentionMs() - 2 * 10_000));
        }
        assertEquals(List.of(), engine.evaluate(on(0, events)).violations());
        assertEquals(200L, engine.lateEvents().get("ErrorRate"));
        assertEquals(200L, engine.lateEvents().get("Frequency"));
    }

    @Test
    void disabledCheckersAreNotBuilt() {
        CheckersProperties cfg = new CheckersProperties();
        cfg.getFrequency().setEnabled(false);
        cfg.getSlowQuery().setEnabled(false);
        assertEquals(List.of("ActualImpact", "ErrorRate"),
                new CheckerEngine(cfg).checkers().stream().map(Checker::name).toList());
    }
}
