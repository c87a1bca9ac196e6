package org.sqlaudit.service.api;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.springframework.dao.DataAccessException;
import org.springframework.http.HttpStatus;
import org.springframework.http.ProblemDetail;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;

import org.sqlaudit.service.sink.SinkException;

/** A store that does not answer is 503 Service Unavailable, not 500: the request may succeed later. */
@RestControllerAdvice
public class ApiErrors {

    private static final Logger log = LoggerFactory.getLogger(ApiErrors.class);

    @ExceptionHandler(SinkException.class)
    public ProblemDetail storeDown(SinkException exc) {
        log.warn("API: {}", exc.getMessage());
        return ProblemDetail.forStatusAndDetail(HttpStatus.SERVICE_UNAVAILABLE, exc.sink() + " unavailable");
    }

    @ExceptionHandler(DataAccessException.class)
    public ProblemDetail databaseDown(DataAccessException exc) {
        log.warn("API: postgres: {}", exc.getMostSpecificCause().getMessage());
        return ProblemDetail.forStatusAndDetail(HttpStatus.SERVICE_UNAVAILABLE, "postgres unavailable");
    }
}
