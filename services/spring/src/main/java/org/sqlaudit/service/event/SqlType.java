package org.sqlaudit.service.event;

/** Statement kind of an event ({@code sql_type}); the JSON value is the constant's name. */
public enum SqlType {
    SELECT, INSERT, UPDATE, DELETE, DDL, OTHER
}
