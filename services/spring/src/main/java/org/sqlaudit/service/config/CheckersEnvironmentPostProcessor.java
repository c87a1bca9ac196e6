package org.sqlaudit.service.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.env.EnvironmentPostProcessor;
import org.springframework.boot.env.OriginTrackedMapPropertySource;
import org.springframework.boot.env.YamlPropertySourceLoader;
import org.springframework.boot.origin.OriginTrackedValue;
import org.springframework.boot.origin.SystemEnvironmentOrigin;
import org.springframework.core.Ordered;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.EnumerablePropertySource;
import org.springframework.core.env.MapPropertySource;
import org.springframework.core.env.PropertySource;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.io.FileSystemResource;

/**
 * Gives the checker thresholds the Python service's configuration interface, on top of Spring's own.
 *
 * <ul>
 *   <li>{@code SQLAUDIT_CHECKERS_CONFIG=/path/checkers.yaml}: the same YAML file as the Python service
 *       ({@code slow_query: {threshold_ms: ...}}), read as properties under {@code sqlaudit.checkers.};
 *   <li>{@code SQLAUDIT_CHECK_<CHECKER>_<FIELD>} (e.g. {@code SQLAUDIT_CHECK_SLOW_QUERY_THRESHOLD_MS=2000}):
 *       one value, over the file. An unknown checker stops the service at start naming the variable; an
 *       unknown field or an invalid value is refused by the binder of {@link CheckersProperties}, which
 *       names the variable or the file and line.
 * </ul>
 *
 * Precedence, highest first: command-line arguments and system properties, Spring's own environment
 * variables ({@code SQLAUDIT_CHECKERS_SLOWQUERY_THRESHOLDMS}), {@code SQLAUDIT_CHECK_*}, the YAML file,
 * {@code application.yml}, the defaults in {@link CheckersProperties}.
 */
public class CheckersEnvironmentPostProcessor implements EnvironmentPostProcessor, Ordered {

    /** Variable naming the checkers YAML file (same as the Python service). */
    public static final String CONFIG_VARIABLE = "SQLAUDIT_CHECKERS_CONFIG";
    /** Prefix of the one-value overrides (same as the Python service). */
    public static final String CHECK_PREFIX = "SQLAUDIT_CHECK_";
    static final String PREFIX = "sqlaudit.checkers.";
    static final List<String> SECTIONS = List.of("slow_query", "actual_impact", "error_rate", "frequency");

    @Override
    public int getOrder() {
        return Ordered.LOWEST_PRECEDENCE;  // after Spring Boot has loaded application.yml
    }

    @Override
    public void postProcessEnvironment(ConfigurableEnvironment environment, SpringApplication application) {
        String anchor = StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME;
        PropertySource<?> system = environment.getPropertySources().get(anchor);
        if (system == null) {
            anchor = null;
        }
        Map<String, Object> variables = system instanceof MapPropertySource map ? map.getSource()
                : environment.getSystemEnvironment();
        PropertySource<?> overrides = overrides(variables);
        String file = environment.getProperty(CONFIG_VARIABLE, "");
        PropertySource<?> fromFile = file.isBlank() ? null : fromFile(Path.of(file));
        // Insert the file first, then the overrides just above it, both below the environment.
        for (PropertySource<?> source : new PropertySource<?>[] {fromFile, overrides}) {
            if (source == null) {
                continue;
            }
            if (anchor != null) {
                environment.getPropertySources().addAfter(anchor, source);
            }
            else {
                environment.getPropertySources().addFirst(source);
            }
        }
    }

    /** {@code SQLAUDIT_CHECK_*} as {@code sqlaudit.checkers.<section>.<field>}; unknown checkers raise. */
    static PropertySource<?> overrides(Map<String, Object> env) {
        Map<String, Object> props = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : env.entrySet()) {
            String key = e.getKey();
            if (!key.startsWith(CHECK_PREFIX)) {
                continue;
            }
            String rest = key.substring(CHECK_PREFIX.length()).toLowerCase(Locale.ROOT);
            String property = null;
            if (rest.equals("state_retention_ms")) {
                property = PREFIX + rest;
            }
            else {
                for (String section : SECTIONS) {
                    if (rest.startsWith(section + "_") && rest.length() > section.length() + 1) {
                        property = PREFIX + section + "." + rest.substring(section.length() + 1);
                        break;
                    }
                }
            }
            if (property == null) {
                throw new IllegalStateException(key + ": unknown checker (known: " + String.join(", ", SECTIONS)
                        + ", or state_retention_ms)");
            }
            props.put(property, OriginTrackedValue.of(e.getValue(), new SystemEnvironmentOrigin(key)));
        }
        return props.isEmpty() ? null : new OriginTrackedMapPropertySource("sqlaudit-check-variables", props);
    }

    /** The Python service's checkers YAML, its keys prefixed with {@code sqlaudit.checkers.}; origins kept. */
    static PropertySource<?> fromFile(Path path) {
        if (!Files.isReadable(path)) {
            throw new IllegalStateException(CONFIG_VARIABLE + "=" + path + ": cannot read checker config "
                    + "(no such file or not readable)");
        }
        List<PropertySource<?>> docs;
        try {
            docs = new YamlPropertySourceLoader().load("checkers", new FileSystemResource(path));
        }
        catch (IOException | RuntimeException exc) {
            throw new IllegalStateException(path + ": cannot read checker config: " + exc.getMessage(), exc);
        }
        Map<String, Object> props = new LinkedHashMap<>();
        for (PropertySource<?> doc : docs) {
            if (!(doc instanceof EnumerablePropertySource<?> e)) {
                continue;
            }
            for (String name : e.getPropertyNames()) {
                if (name.startsWith("[") || name.isEmpty()) {
                    throw new IllegalStateException(path + ": expected a mapping at the top level");
                }
                Object value = doc instanceof OriginTrackedMapPropertySource o ? o.getSource().get(name)
                        : doc.getProperty(name);
                props.put(PREFIX + name, value);
            }
        }
        props.put(PREFIX + "config", path.toString());
        return new OriginTrackedMapPropertySource("sqlaudit-checkers-file [" + path + "]", props);
    }
}
