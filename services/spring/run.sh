#!/usr/bin/env bash
# Runs one replica of the Spring Boot SQL Audit Service in the foreground (builds the jar first if the
# cache lacks it). The JVM replaces this shell (exec), so its pid is the replica's and SIGTERM reaches
# Spring Boot directly: the listener finishes its batch, commits, leaves the group, Tomcat drains.
#
#   SQLAUDIT_JAVA_OPTS   JVM options (default below: sized for 3 replicas on 2 cores)
#   every other setting: environment variables, see services/spring/README.md
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JAR="$(bash "$HERE/build.sh" --print-jar)"
DEFAULT_OPTS="-Xms64m -Xmx256m -Xss512k -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError"
# shellcheck disable=SC2086  # options are words
exec java ${SQLAUDIT_JAVA_OPTS:-$DEFAULT_OPTS} -jar "$JAR" "$@"
