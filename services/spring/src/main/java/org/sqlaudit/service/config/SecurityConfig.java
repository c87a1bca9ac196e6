package org.sqlaudit.service.config;

import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

import javax.crypto.spec.SecretKeySpec;

import org.springframework.boot.actuate.endpoint.SanitizingFunction;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.security.config.Customizer;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.config.http.SessionCreationPolicy;
import org.springframework.security.oauth2.jose.jws.MacAlgorithm;
import org.springframework.security.oauth2.jwt.JwtDecoder;
import org.springframework.security.oauth2.jwt.NimbusJwtDecoder;
import org.springframework.security.web.SecurityFilterChain;

/**
 * The read API ({@code /api/**}) takes HS256 bearer tokens signed with {@code sqlaudit.jwt.secret}
 * ({@code SQLAUDIT_JWT_SECRET}); expiry is checked with Spring Security's default 60 s clock skew. A
 * missing, malformed, wrongly signed or expired token gets 401. Actuator endpoints are open (probes and
 * Prometheus scrapes carry no token). {@code configprops} shows its values to a caller with a valid token
 * ({@code show-values: when-authorized}), as the guide's "configuration not taking effect" diagnosis needs,
 * and masks credentials even then ({@link #credentials()}); without a token every value is masked.
 */
@Configuration(proxyBeanMethods = false)
public class SecurityConfig {

    /** HS256 needs a key of at least 256 bits. */
    static final int MIN_SECRET_BYTES = 32;

    @Bean
    public SecurityFilterChain apiSecurity(HttpSecurity http) throws Exception {
        http.authorizeHttpRequests(auth -> auth
                        .requestMatchers("/actuator/**", "/error").permitAll()
                        .anyRequest().authenticated())
                .oauth2ResourceServer(rs -> rs.jwt(Customizer.withDefaults()))
                .sessionManagement(s -> s.sessionCreationPolicy(SessionCreationPolicy.STATELESS))
                .csrf(csrf -> csrf.disable());
        return http.build();
    }

    /** Keys whose values stay masked for every caller: passwords, secrets, tokens, keys, credentials. */
    static final Pattern CREDENTIAL = Pattern.compile("(?i)(password|secret|token|credentials|key)$");

    @Bean
    public SanitizingFunction credentials() {
        return data -> CREDENTIAL.matcher(data.getKey()).find() ? data.withSanitizedValue() : data;
    }

    @Bean
    public JwtDecoder jwtDecoder(SqlAuditProperties props) {
        byte[] secret = props.getJwt().getSecret().getBytes(StandardCharsets.UTF_8);
        if (secret.length < MIN_SECRET_BYTES) {
            throw new IllegalStateException("sqlaudit.jwt.secret (SQLAUDIT_JWT_SECRET): "
                    + (secret.length == 0 ? "not set" : "only " + secret.length + " bytes")
                    + "; the read API's HS256 tokens need a secret of at least " + MIN_SECRET_BYTES + " bytes");
        }
        return NimbusJwtDecoder.withSecretKey(new SecretKeySpec(secret, "HmacSHA256"))
                .macAlgorithm(MacAlgorithm.HS256).build();
    }
}
