package org.sqlaudit.service.sink;

import org.springframework.boot.actuate.health.Health;
import org.springframework.boot.actuate.health.HealthIndicator;
import org.springframework.stereotype.Component;

/**
 * The {@code clickhouse} component of {@code /actuator/health}: {@code SELECT 1} at the replica the sink
 * writes to, 1 s timeout. Like Spring Boot's own {@code db} indicator it is not part of the readiness or
 * liveness groups (Spring Boot's defaults).
 */
@Component("clickhouse")
public class ClickHouseHealthIndicator implements HealthIndicator {

    private final ClickHouseSink sink;

    public ClickHouseHealthIndicator(ClickHouseSink sink) {
        this.sink = sink;
    }

    @Override
    public Health health() {
        try {
            sink.ping();
            return Health.up().withDetail("url", sink.currentUrl().toString()).build();
        }
        catch (SinkException exc) {
            return Health.down().withDetail("url", sink.currentUrl().toString())
                    .withDetail("error", exc.getMessage()).build();
        }
    }
}
