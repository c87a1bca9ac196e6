#!/usr/bin/env bash
# Builds the Spring Boot SQL Audit Service (services/spring) into one executable jar and caches it:
#
#   $RESILIENCE_CACHE_DIR/spring/<hash of pom.xml + src/>/sql-audit-service.jar
#
# A no-op when that jar exists (about 50 ms). Otherwise Maven resolves the dependencies from Maven Central
# (first time: a few minutes; ~/.m2 keeps them), compiles, runs the JUnit tests (checkers, event
# validation, configuration) and repackages the jar, in a scratch copy so the checkout gets no target/.
#
#   build.sh               build if needed; progress on stderr
#   build.sh --print-jar   build if needed, then print the jar's path on stdout (nothing else goes there)
#
#   RESILIENCE_CACHE_DIR   cache root (default /var/cache/sql-audit-resilience)
#
# Needs a JDK 17 and Maven; installs Debian's openjdk-17-jdk-headless and maven when javac or mvn is missing.
# Exit codes: 0 the jar is there, 1 the build or a test failed (Maven's output says which), 2 bad usage.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${RESILIENCE_CACHE_DIR:-/var/cache/sql-audit-resilience}"
PRINT_JAR=0
case "${1:-}" in
  "") ;;
  --print-jar) PRINT_JAR=1 ;;
  -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
  *) echo "build.sh: unknown option $1 (use --print-jar)" >&2; exit 2 ;;
esac

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The key covers every input of the build: the pom and each source and resource file (path and content).
KEY="$(cd "$HERE" && find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
DEST="$CACHE/spring/$KEY"
JAR="$DEST/sql-audit-service.jar"

if [ ! -f "$JAR" ]; then
  missing=()
  command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt: installing ${missing[*]}"
    $SUDO apt-get update -q >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  say "maven: building the Spring Boot service into $DEST"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp -r "$HERE/pom.xml" "$HERE/src" "$work/"
  # Maven prints bare colour resets even in batch mode: drop them and the empty lines they leave.
  mvn -B -q -f "$work/pom.xml" package 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2
  $SUDO mkdir -p "$DEST"
  $SUDO cp "$work/target/sql-audit-service.jar" "$JAR.tmp"
  $SUDO mv "$JAR.tmp" "$JAR"
  $SUDO chmod -R a+rX "$CACHE/spring"
fi

if [ "$PRINT_JAR" = 1 ]; then
  echo "$JAR"
fi
