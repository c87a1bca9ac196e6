#!/usr/bin/env bash
# Installs everything the embedded stack runs, into a cache outside git.
#
# Idempotent: each step checks for its result first, so a second run takes
# about a second. Run as root, or as a user with sudo (apt and the cache
# directory need it).
#
#   RESILIENCE_CACHE_DIR   where the Kafka jars, toxiproxy and the postgres-user
#                          venv land (default /var/cache/sql-audit-resilience;
#                          must be readable by the postgres user, so not /root)
#
# Exit codes: 0 installed (or already there), 1 a step failed (its output says which).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${RESILIENCE_CACHE_DIR:-/var/cache/sql-audit-resilience}"
TOXIPROXY_VERSION="v2.12.0"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/kafka/pom.xml")"
APT_PACKAGES=(postgresql-15 clickhouse-server clickhouse-client prometheus zookeeper etcd-server etcd-client
              python3-venv openjdk-17-jre-headless maven golang-go iproute2 chromium)
# Tools the machine may already have from elsewhere (pyenv, a Go tarball): only
# the apt packages whose command is missing are installed.
declare -A PROVIDES=([openjdk-17-jre-headless]=java [maven]=mvn [golang-go]=go)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
ok() { printf '    %s\n' "$*"; }

# --- 1. Debian packages --------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if [ -n "${PROVIDES[$pkg]:-}" ] && command -v "${PROVIDES[$pkg]}" >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt: installing ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  # The packages' own services are not used: the stack runs its own instances.
  for svc in postgresql clickhouse-server prometheus zookeeper etcd; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
else
  ok "apt packages present"
fi

$SUDO mkdir -p "$CACHE/bin"
$SUDO chmod 755 "$CACHE"

# --- 2. Kafka broker jars (Maven Central, pinned in deploy/local/kafka/pom.xml) --
# Keyed by the pom's hash, so editing the pom (a version, a logging jar) resolves anew.
POM_HASH="$(sha256sum "$HERE/kafka/pom.xml" | cut -c1-8)"
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION-$POM_HASH/libs"
if [ ! -f "$KAFKA_LIBS/.complete" ]; then
  step "maven: resolving Apache Kafka $KAFKA_VERSION into $KAFKA_LIBS"
  $SUDO mkdir -p "$KAFKA_LIBS"
  $SUDO mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null
  $SUDO touch "$KAFKA_LIBS/.complete"
else
  ok "kafka $KAFKA_VERSION jars present"
fi

# --- 3. toxiproxy (go install at a pinned version) ----------------------------
TOXI="$CACHE/bin/toxiproxy-server-$TOXIPROXY_VERSION"
if [ ! -x "$TOXI" ]; then
  step "go: building toxiproxy $TOXIPROXY_VERSION"
  gobin="$(mktemp -d)"
  GOBIN="$gobin" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  $SUDO install -m 755 "$gobin/server" "$TOXI"
  rm -rf "$gobin"
else
  ok "toxiproxy $TOXIPROXY_VERSION present"
fi

# --- 4. venv for processes that run as the postgres user (Patroni) -------------
# Made from Debian's /usr/bin/python3: a Python under /root is unreadable to postgres.
PGVENV="$CACHE/pg-venv"
if [ ! -f "$PGVENV/.complete" ]; then
  step "venv: patroni for the postgres user in $PGVENV"
  $SUDO rm -rf "$PGVENV"
  $SUDO /usr/bin/python3 -m venv "$PGVENV"
  $SUDO "$PGVENV/bin/pip" install -q --disable-pip-version-check \
    'patroni[etcd3]>=4.1,<4.2' 'psycopg[binary]>=3.2,<4'
  $SUDO touch "$PGVENV/.complete"
else
  ok "patroni venv present"
fi

bash "$HERE/../../services/spring/build.sh"  # 5. the Spring Boot service's jar (Maven Central), cached by source hash
$SUDO chmod -R a+rX "$CACHE"
ok "cache: $CACHE"
