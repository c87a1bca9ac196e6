package org.sqlaudit.service.checker;

/** Severity of a violation; stored as text in {@code violations.severity}. */
public enum Severity {
    WARNING, CRITICAL
}
