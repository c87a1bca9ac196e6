package org.sqlaudit.service.config;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.util.backoff.ExponentialBackOff;

import org.sqlaudit.service.checker.CheckerEngine;

/**
 * The pieces Spring Boot's Kafka auto-configuration picks up: the checker engine and the listener
 * container's error handler. Everything else (consumer, producer, container) is configured by
 * {@code spring.kafka.*} properties in application.yml.
 */
@Configuration(proxyBeanMethods = false)
public class KafkaConfig {

    private static final Logger log = LoggerFactory.getLogger(KafkaConfig.class);

    @Bean
    public CheckerEngine checkerEngine(CheckersProperties checkers) {
        return new CheckerEngine(checkers);
    }

    /**
     * A failed batch is retried in memory, forever, with exponential backoff: the container pauses the
     * partitions and keeps polling meanwhile, so the replica stays in the group and nothing new is fetched.
     * The recoverer, which spring-kafka would call once retries are exhausted (they never are) and which
     * would otherwise skip the batch and commit its offsets, refuses: the container then seeks back and the
     * batch is read again. A stopping container abandons the retry without committing.
     */
    @Bean
    public CommonErrorHandler auditErrorHandler(SqlAuditProperties props) {
        ExponentialBackOff backOff = new ExponentialBackOff(props.getRetry().getInitialInterval().toMillis(), 2.0);
        backOff.setMaxInterval(props.getRetry().getMaxInterval().toMillis());
        backOff.setMaxElapsedTime(Long.MAX_VALUE);
        backOff.setMaxAttempts(Integer.MAX_VALUE);
        DefaultErrorHandler handler = new DefaultErrorHandler((record, exc) -> {
            log.error("retries exhausted for {}-{}@{}: refusing to skip it ({})", record.topic(), record.partition(),
                    record.offset(), exc.toString());
            throw new IllegalStateException("a batch that is not durable is never skipped", exc);
        }, backOff);
        handler.setAckAfterHandle(true);  // after a successful retry: commit, as after a first success
        return handler;
    }
}
