package org.sqlaudit.service.config;

import jakarta.validation.Valid;
import jakarta.validation.constraints.DecimalMax;
import jakarta.validation.constraints.DecimalMin;
import jakarta.validation.constraints.Min;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.validation.annotation.Validated;

/**
 * Checker thresholds: the same fields and defaults as the Python service's {@code checkers.yaml}
 * (docs/checkers.md). Bound from {@code sqlaudit.checkers.*}; the YAML file named by
 * {@code SQLAUDIT_CHECKERS_CONFIG} and the {@code SQLAUDIT_CHECK_<CHECKER>_<FIELD>} variables are mapped
 * onto that prefix by {@link CheckersEnvironmentPostProcessor}. Unknown keys and invalid values stop the
 * service at start, naming the property and where it came from.
 */
@Validated
@ConfigurationProperties(prefix = "sqlaudit.checkers", ignoreUnknownFields = false)
public class CheckersProperties {

    @Valid
    private SlowQuery slowQuery = new SlowQuery();
    @Valid
    private ActualImpact actualImpact = new ActualImpact();
    @Valid
    private ErrorRate errorRate = new ErrorRate();
    @Valid
    private Frequency frequency = new Frequency();
    /** The YAML file these values were read from ({@code SQLAUDIT_CHECKERS_CONFIG}); empty: defaults only. */
    private String config = "";
    /** Windows older than this (vs the newest event of the partition) are closed. */
    @Min(1)
    private long stateRetentionMs = 120_000;

    /** SlowQuery: WARNING when {@code duration_ms > threshold_ms}, CRITICAL when {@code > critical_ms}. */
    public static class SlowQuery {
        private boolean enabled = true;
        @Min(0)
        private long thresholdMs = 1000;
        @Min(0)
        private long criticalMs = 5000;

        public boolean isEnabled() { return enabled; }
        public void setEnabled(boolean enabled) { this.enabled = enabled; }
        public long getThresholdMs() { return thresholdMs; }
        public void setThresholdMs(long thresholdMs) { this.thresholdMs = thresholdMs; }
        public long getCriticalMs() { return criticalMs; }
        public void setCriticalMs(long criticalMs) { this.criticalMs = criticalMs; }
    }

    /** ActualImpact: for UPDATE/DELETE, WARNING when {@code rows_affected > threshold_rows}, CRITICAL when {@code > critical_rows}. */
    public static class ActualImpact {
        private boolean enabled = true;
        @Min(0)
        private long thresholdRows = 1000;
        @Min(0)
        private long criticalRows = 10000;

        public boolean isEnabled() { return enabled; }
        public void setEnabled(boolean enabled) { this.enabled = enabled; }
        public long getThresholdRows() { return thresholdRows; }
        public void setThresholdRows(long thresholdRows) { this.thresholdRows = thresholdRows; }
        public long getCriticalRows() { return criticalRows; }
        public void setCriticalRows(long criticalRows) { this.criticalRows = criticalRows; }
    }

    /** ErrorRate: per-app error ratio over a tumbling {@code produced_at} window. */
    public static class ErrorRate {
        private boolean enabled = true;
        @Min(1)
        private long windowMs = 10000;
        @Min(1)
        private int minEvents = 20;
        @DecimalMin("0") @DecimalMax("1")
        private double threshold = 0.5;
        @DecimalMin("0") @DecimalMax("1")
        private double critical = 0.9;

        public boolean isEnabled() { return enabled; }
        public void setEnabled(boolean enabled) { this.enabled = enabled; }
        public long getWindowMs() { return windowMs; }
        public void setWindowMs(long windowMs) { this.windowMs = windowMs; }
        public int getMinEvents() { return minEvents; }
        public void setMinEvents(int minEvents) { this.minEvents = minEvents; }
        public double getThreshold() { return threshold; }
        public void setThreshold(double threshold) { this.threshold = threshold; }
        public double getCritical() { return critical; }
        public void setCritical(double critical) { this.critical = critical; }
    }

    /** Frequency: the same normalised statement of an app more than {@code threshold} times per window. */
    public static class Frequency {
        private boolean enabled = true;
        @Min(1)
        private long windowMs = 10000;
        @Min(1)
        private long threshold = 100;
        @Min(1)
        private long critical = 1000;

        public boolean isEnabled() { return enabled; }
        public void setEnabled(boolean enabled) { this.enabled = enabled; }
        public long getWindowMs() { return windowMs; }
        public void setWindowMs(long windowMs) { this.windowMs = windowMs; }
        public long getThreshold() { return threshold; }
        public void setThreshold(long threshold) { this.threshold = threshold; }
        public long getCritical() { return critical; }
        public void setCritical(long critical) { this.critical = critical; }
    }

    public SlowQuery getSlowQuery() { return slowQuery; }
    public void setSlowQuery(SlowQuery slowQuery) { this.slowQuery = slowQuery; }
    public ActualImpact getActualImpact() { return actualImpact; }
    public void setActualImpact(ActualImpact actualImpact) { this.actualImpact = actualImpact; }
    public ErrorRate getErrorRate() { return errorRate; }
    public void setErrorRate(ErrorRate errorRate) { this.errorRate = errorRate; }
    public Frequency getFrequency() { return frequency; }
    public void setFrequency(Frequency frequency) { this.frequency = frequency; }
    public String getConfig() { return config; }
    public void setConfig(String config) { this.config = config; }
    public long getStateRetentionMs() { return stateRetentionMs; }
    public void setStateRetentionMs(long stateRetentionMs) { this.stateRetentionMs = stateRetentionMs; }
}
