package org.sqlaudit.service;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;

/** The SQL Audit Service: Kafka events to ClickHouse, checker violations to PostgreSQL, a JWT read API. */
@SpringBootApplication
@ConfigurationPropertiesScan
public class SqlAuditApplication {

    public static void main(String[] args) {
        SpringApplication.run(SqlAuditApplication.class, args);
    }
}
