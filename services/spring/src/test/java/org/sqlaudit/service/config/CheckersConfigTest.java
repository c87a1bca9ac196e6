package org.sqlaudit.service.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import jakarta.validation.Validation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.context.properties.bind.BindException;
import org.springframework.boot.context.properties.bind.BindHandler;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.bind.UnboundConfigurationPropertiesException;
import org.springframework.boot.context.properties.bind.handler.NoUnboundElementsBindHandler;
import org.springframework.boot.context.properties.bind.validation.BindValidationException;
import org.springframework.boot.context.properties.bind.validation.ValidationBindHandler;
import org.springframework.boot.origin.OriginProvider;
import org.springframework.boot.context.properties.source.ConfigurationProperty;
import org.springframework.boot.context.properties.source.ConfigurationPropertySources;
import org.springframework.core.env.MapPropertySource;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import org.springframework.validation.ObjectError;
import org.springframework.validation.beanvalidation.SpringValidatorAdapter;

/**
 * The Python service's checker configuration interface on the Spring service: the same YAML file
 * ({@code SQLAUDIT_CHECKERS_CONFIG}), the same one-value variables ({@code SQLAUDIT_CHECK_*}), errors that
 * name the variable or the file.
 */
class CheckersConfigTest {

    @TempDir
    Path dir;

    /** An environment whose system variables are {@code env}, post-processed, bound as the service binds:
     * unknown elements refused, Bean Validation constraints checked. */
    private static CheckersProperties bind(Map<String, Object> env) {
        StandardEnvironment environment = new StandardEnvironment();
        environment.getPropertySources().replace(StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME,
                new SystemEnvironmentPropertySource(StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME, env));
        environment.getPropertySources().addLast(new MapPropertySource("application.yml",
                Map.of("sqlaudit.checkers.slow-query.critical-ms", "7000")));
        new CheckersEnvironmentPostProcessor().postProcessEnvironment(environment, new SpringApplication());
        Binder binder = new Binder(ConfigurationPropertySources.get(environment));
        return binder.bindOrCreate("sqlaudit.checkers", Bindable.of(CheckersProperties.class),
                new ValidationBindHandler(new NoUnboundElementsBindHandler(BindHandler.DEFAULT),
                        new SpringValidatorAdapter(Validation.buildDefaultValidatorFactory().getValidator())));
    }

    @Test
    void defaultsAreThePythonServicesPackagedFile() {
        CheckersProperties c = new CheckersProperties();
        assertEquals(1000, c.getSlowQuery().getThresholdMs());
        assertEquals(5000, c.getSlowQuery().getCriticalMs());
        assertEquals(1000, c.getActualImpact().getThresholdRows());
        assertEquals(10000, c.getActualImpact().getCriticalRows());
        assertEquals(10000, c.getErrorRate().getWindowMs());
        assertEquals(20, c.getErrorRate().getMinEvents());
        assertEquals(0.5, c.getErrorRate().getThreshold());
        assertEquals(0.9, c.getErrorRate().getCritical());
        assertEquals(10000, c.getFrequency().getWindowMs());
        assertEquals(100, c.getFrequency().getThreshold());
        assertEquals(1000, c.getFrequency().getCritical());
        assertEquals(120000, c.getStateRetentionMs());
    }

    @Test
    void checkVariablesOverrideTheFileWhichOverridesApplicationYml() throws Exception {
        Path file = dir.resolve("checkers.yaml");
        Files.writeString(file, "slow_query:\n  threshold_ms: 1500\n  critical_ms: 9000\nfrequency:\n  enabled: true\n"
                + "state_retention_ms: 60000\n");
        Map<String, Object> env = new HashMap<>();
        env.put("SQLAUDIT_CHECKERS_CONFIG", file.toString());
        env.put("SQLAUDIT_CHECK_SLOW_QUERY_THRESHOLD_MS", "2500");
        env.put("SQLAUDIT_CHECK_FREQUENCY_ENABLED", "false");
        CheckersProperties c = bind(env);
        assertEquals(2500, c.getSlowQuery().getThresholdMs());  // variable over file
        assertEquals(9000, c.getSlowQuery().getCriticalMs());   // file over application.yml
        assertFalse(c.getFrequency().isEnabled());
        assertEquals(60000, c.getStateRetentionMs());
        assertEquals(file.toString(), c.getConfig());
    }

    @Test
    void springsOwnVariableFormWinsOverEverything() {
        Map<String, Object> env = new HashMap<>();
        env.put("SQLAUDIT_CHECK_SLOW_QUERY_THRESHOLD_MS", "2500");
        env.put("SQLAUDIT_CHECKERS_SLOWQUERY_THRESHOLDMS", "3500");
        assertEquals(3500, bind(env).getSlowQuery().getThresholdMs());
    }

    @Test
    void anUnknownCheckerIsNamed() {
        IllegalStateException exc = assertThrows(IllegalStateException.class,
                () -> bind(Map.of("SQLAUDIT_CHECK_SLOWQUERY_THRESHOLD_MS", "1")));
        assertTrue(exc.getMessage().startsWith("SQLAUDIT_CHECK_SLOWQUERY_THRESHOLD_MS: unknown checker"),
                exc.getMessage());
    }

    @Test
    void anUnknownFieldIsRefusedNamingTheVariable() {
        BindException exc = assertThrows(BindException.class,
                () -> bind(Map.of("SQLAUDIT_CHECK_SLOW_QUERY_BOGUS", "1")));
        UnboundConfigurationPropertiesException unbound = (UnboundConfigurationPropertiesException) exc.getCause();
        ConfigurationProperty property = unbound.getUnboundProperties().iterator().next();
        assertEquals("sqlaudit.checkers.slowquery.bogus", property.getName().toString());
        assertEquals("System Environment Property \"SQLAUDIT_CHECK_SLOW_QUERY_BOGUS\"",
                String.valueOf(property.getOrigin()));
    }

    @Test
    void anInvalidValueInTheFileIsRefusedNamingFileAndLine() throws Exception {
        Path file = dir.resolve("bad.yaml");
        Files.writeString(file, "error_rate:\n  threshold: lots\n");
        BindException exc = assertThrows(BindException.class,
                () -> bind(Map.of("SQLAUDIT_CHECKERS_CONFIG", file.toString())));
        assertTrue(exc.getMessage().contains("sqlaudit.checkers"), exc.getMessage());
        String origin = String.valueOf(exc.getProperty().getOrigin());
        assertTrue(origin.contains("bad.yaml") && origin.contains(" - 2:"), origin);  // file and line
    }

    @Test
    void anOutOfRangeValueIsRefusedNamingTheVariable() {
        BindException exc = assertThrows(BindException.class,
                () -> bind(Map.of("SQLAUDIT_CHECK_ERROR_RATE_THRESHOLD", "2")));
        BindValidationException invalid = (BindValidationException) exc.getCause();
        ObjectError error = invalid.getValidationErrors().getAllErrors().get(0);
        assertEquals("System Environment Property \"SQLAUDIT_CHECK_ERROR_RATE_THRESHOLD\"",
                String.valueOf(((OriginProvider) error).getOrigin()), String.valueOf(error));
    }

    @Test
    void aMissingFileIsNamed() {
        IllegalStateException exc = assertThrows(IllegalStateException.class,
                () -> bind(Map.of("SQLAUDIT_CHECKERS_CONFIG", dir.resolve("nope.yaml").toString())));
        assertTrue(exc.getMessage().contains("nope.yaml"), exc.getMessage());
    }
}
