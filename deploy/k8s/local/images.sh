#!/usr/bin/env bash
# Build and cache the images of the system under test for the local cluster (docs/cluster.md, "The system
# under test"): no registry, each an OCI archive named by a hash of its inputs, listed in
# $CACHE_ROOT/local-system.json (a manifest of its own: deploy/k8s/local/install.sh rewrites
# local-cluster.json, and an older checkout running it must not drop these entries).
#
#   bash deploy/k8s/local/images.sh              # build what is missing (seconds when cached)
#   bash deploy/k8s/local/images.sh --force      # rebuild all four
#
# Images:
#   platform  debootstrap --variant=minbase of Debian $DEBIAN_SUITE with postgresql-15, clickhouse-server,
#             openjdk-17-jre-headless, prometheus and python3, plus the Kafka jars the local stack caches and
#             Debian's ZooKeeper jars it runs (deploy/local/install.sh; /opt/kafka/libs, /opt/zookeeper/lib).
#             ONE image for Kafka, ZooKeeper, PostgreSQL, ClickHouse and Prometheus, each StatefulSet running its
#             own command: the same Debian packages and versions as the local stack, one debootstrap instead of
#             five, one copy of the shared libraries on disk. Upstream images
#             (apache/kafka, postgres, clickhouse/clickhouse-server, prom/prometheus) would need a registry.
#   patroni   the platform image plus one layer: Patroni and psycopg from PyPI (the local stack's ha versions), for
#             PostgreSQL's two members with Kubernetes as DCS (Patroni's own API client, no kubernetes package).
#   service   the base image (install.sh) plus one layer: the reference service (sqlaudit/), the suite's
#             clients/ and stack/ exporters (readiness and lag the kube-state-metrics / kafka_exporter way),
#             and their runtime dependencies installed by pip from PyPI with the versions this checkout's
#             pyproject.toml allows (pinned in the hash by the list of resolved wheels); and the toxiproxy
#             server the local stack built (deploy/local/install.sh), which the service pods run beside the
#             service on its store edges (latency faults on the cluster, docs/cluster.md).
#   runner    the base image plus one layer: the suite itself as deploy/k8s/Dockerfile describes it (its packages,
#             experiments/, docs/, deploy/ as git tracks them; every dependency of pyproject.toml by pip, the
#             `resilience` command as entry point, user 10001), for the CronJob and the gate Job of deploy/k8s/base
#             (deploy/k8s/local/runner/, `python -m cluster runner`). The Dockerfile needs a Docker engine and a
#             registry; this is the same image without either.
#
# Run as root (debootstrap). Exit codes: 0 built (or cached), 1 a step failed, 2 bad argument, 3 missing input.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PLATFORM_PACKAGES="python3,postgresql-15,clickhouse-server,clickhouse-client,openjdk-17-jre-headless,prometheus,procps"
CACHE_ROOT="${RESILIENCE_K8S_CACHE:-/var/cache/sql-audit-resilience/k8s}"
STACK_CACHE="${RESILIENCE_CACHE:-/var/cache/sql-audit-resilience}"
IMAGES_DEST="$CACHE_ROOT/images"
MANIFEST="$CACHE_ROOT/local-system.json"
CLUSTER_MANIFEST="$CACHE_ROOT/local-cluster.json"
IMAGE_REPO="localhost/sql-audit"
SERVICE_REQUIREMENTS=("kafka-python>=3.0,<4" "psycopg[binary,pool]>=3.2,<4" "clickhouse-driver>=0.2.9,<0.3"
                      "prometheus-client>=0.20,<1" "pydantic>=2.7,<3" "pyyaml>=6,<7" "requests>=2.31,<3")
SERVICE_PACKAGES=(sqlaudit clients stack)
PATRONI_REQUIREMENTS=("patroni[kubernetes]>=4.1,<4.2" "psycopg[binary]>=3.2,<4")
# The runner's layer: what deploy/k8s/Dockerfile copies (the packages pyproject.toml lists, and the data they read
# next to them: resilience's REPO_ROOT is the parent of its package).
RUNNER_PATHS=(pyproject.toml chaossqlaudit resilience stack clients target sqlaudit loadtests probes faults cluster
              experiments docs deploy)
RUNNER_UID=10001

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
ok() { printf '    %s\n' "$*"; }
input_hash() { printf '%s\n' "$@" | sha256sum | cut -c1-12; }

kafka_libs() {
  local d
  d="$(find "$STACK_CACHE" -maxdepth 1 -name 'kafka-*' -type d | sort | tail -1)"
  [ -n "$d" ] && [ -d "$d/libs" ] || { echo "no Kafka jars in $STACK_CACHE/kafka-*/libs: run deploy/local/install.sh" >&2; exit 3; }
  echo "$d/libs"
}

# ZooKeeper 3.8's jars, as the local stack runs them (stack/context.py, ZOOKEEPER_CLASSPATH: Debian's zookeeper
# package, which deploy/local/install.sh installs), for ClickHouse's replication on the cluster; and metrics-core,
# commons-io and snappy-java, which the local stack finds through zookeeper.jar's Class-Path of absolute
# /usr/share/java paths (without metrics-core the server dies at start: ClassNotFoundException
# com.codahale.metrics.Reservoir; without snappy-java its listener thread does).
ZOOKEEPER_JARS=(zookeeper zookeeper-jute slf4j-api slf4j-simple commons-cli netty-handler netty-common netty-buffer
                netty-transport netty-codec netty-resolver netty-transport-native-epoll
                netty-transport-native-unix-common metrics-core commons-io snappy-java)
zookeeper_jars() {
  local j
  for j in "${ZOOKEEPER_JARS[@]}"; do
    [ -f "/usr/share/java/$j.jar" ] || { echo "no /usr/share/java/$j.jar: run deploy/local/install.sh" >&2; exit 3; }
    echo "/usr/share/java/$j.jar"
  done
}

toxiproxy_bin() {
  local b
  b="$(find "$STACK_CACHE/bin" -maxdepth 1 -name 'toxiproxy-server-*' -type f 2>/dev/null | sort | tail -1)"
  [ -n "$b" ] || { echo "no toxiproxy server in $STACK_CACHE/bin: run deploy/local/install.sh" >&2; exit 3; }
  echo "$b"
}

# finish_image NAME HASH WORK: write the layout in WORK as the archive of NAME:HASH, drop other hashes not used
# for a day. Not at once: checkouts on one machine share the cache (a helper's worktree, a CI clone), each with
# its own source hash; deleting every other hash removed a service image another checkout was importing
# (`ctr images import ... no such file`, 2026-12-02). A cached image is touched when it is reused.
finish_image() {
  local name=$1 hash=$2 work=$3 archive="$IMAGES_DEST/$1-$2.oci.tar"
  umoci gc --layout "$work/layout"
  mkdir -p "$IMAGES_DEST"
  tar -C "$work/layout" -cf "$archive.tmp" .
  mv "$archive.tmp" "$archive"
  find "$IMAGES_DEST" -maxdepth 1 -name "$name-*.oci.tar" ! -name "$name-$hash.oci.tar" -mmin +1440 -delete
  rm -rf "$work"
  ok "$archive ($(du -h "$archive" | cut -f1))"
}

# cached NAME HASH: whether NAME's image of these inputs is built (unless --force); a reused one is touched.
cached() {
  [[ $FORCE == 0 && -f $IMAGES_DEST/$1-$2.oci.tar ]] || return 1
  touch "$IMAGES_DEST/$1-$2.oci.tar"; ok "image $1 cached ($2)"
}

# base_image: BASE_REF, BASE_ARCHIVE, BASE_TAG of the cluster's base image (install.sh built it), which the service
# and runner images add one layer to.
base_image() {
  BASE_REF="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["images"]["base"]["ref"])' "$CLUSTER_MANIFEST")"
  BASE_ARCHIVE="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["images"]["base"]["archive"])' "$CLUSTER_MANIFEST")"
  BASE_TAG="${BASE_REF##*:}"
  [ -f "$BASE_ARCHIVE" ] || { echo "no base image $BASE_ARCHIVE: run deploy/k8s/local/install.sh" >&2; exit 3; }
}

# unpack_from ARCHIVE TAG WORK HASH: image ARCHIVE (tagged TAG)'s layout in WORK/layout, tagged HASH too, its root
# file system in WORK/bundle: the start of an image that adds one layer to it.
unpack_from() {
  mkdir -p "$3/layout"
  tar -C "$3/layout" -xf "$1"
  umoci tag --image "$3/layout:$2" "$4"
  umoci unpack --image "$3/layout:$4" "$3/bundle"
}
unpack_base() { unpack_from "$BASE_ARCHIVE" "$BASE_TAG" "$1" "$2"; }

platform_rootfs() {
  local root=$1 libs
  libs="$(kafka_libs)"
  debootstrap --variant=minbase --include="$PLATFORM_PACKAGES" "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" \
    >"$root.log" 2>&1 || { tail -30 "$root.log" >&2; return 1; }
  # The packages' own clusters and data: every StatefulSet makes its own in its volume.
  rm -rf "$root"/var/lib/postgresql/15/main "$root"/etc/postgresql/15/main
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/log/*.log \
    "$root"/var/log/apt/* "$root"/usr/share/prometheus/console* 2>/dev/null || true
  find "$root/usr/share/doc" -type f ! -name copyright -delete
  find "$root/dev" -mindepth 1 -delete
  mkdir -p "$root/opt/kafka" "$root/opt/zookeeper/lib"
  cp -r "$libs" "$root/opt/kafka/libs"
  zookeeper_jars | xargs -I{} cp -L {} "$root/opt/zookeeper/lib/"
}

platform_image() {
  local hash work
  hash="$(input_hash "$(declare -f platform_rootfs)" "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$PLATFORM_PACKAGES" \
    "$(kafka_libs)" "$(zookeeper_jars | xargs sha256sum)" "$(dpkg-query -W -f='${Version}' debootstrap)")"
  PLATFORM_HASH=$hash
  cached platform "$hash" && return
  step "image platform ($hash): debootstrap with $PLATFORM_PACKAGES"
  work="$(mktemp -d)"
  umoci init --layout "$work/layout"
  umoci new --image "$work/layout:$hash"
  umoci unpack --image "$work/layout:$hash" "$work/bundle"
  platform_rootfs "$work/bundle/rootfs"
  umoci repack --image "$work/layout:$hash" "$work/bundle"
  umoci config --image "$work/layout:$hash" --no-history --author "sql-audit-resilience" \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.env LANG=C.UTF-8 \
    --config.cmd bash
  finish_image platform "$hash" "$work"
}

# PostgreSQL under Patroni: the platform image plus Patroni and psycopg from PyPI (the local stack's versions,
# deploy/local/install.sh), for the postgres StatefulSet's two members (Kubernetes DCS: Patroni's own API client).
patroni_image() {
  local hash work
  hash="$(input_hash "$(declare -f patroni_image)" "$PLATFORM_HASH" "${PATRONI_REQUIREMENTS[@]}")"
  PATRONI_HASH=$hash
  cached patroni "$hash" && return
  step "image patroni ($hash): platform $PLATFORM_HASH + pip ${PATRONI_REQUIREMENTS[*]}"
  work="$(mktemp -d)"
  unpack_from "$IMAGES_DEST/platform-$PLATFORM_HASH.oci.tar" "$PLATFORM_HASH" "$work" "$hash"
  # the platform's python3 is Debian's 3.11, as this machine's: binary wheels built for it fit, scripts say
  # /usr/bin/python3 (patroni, patronictl in /opt/patroni/site/bin)
  /usr/bin/python3 -m pip install --quiet --root-user-action=ignore --disable-pip-version-check --no-warn-conflicts \
    --no-compile --target "$work/bundle/rootfs/opt/patroni/site" "${PATRONI_REQUIREMENTS[@]}"
  ok "wheels: $(ls "$work/bundle/rootfs/opt/patroni/site" | grep -E '\.dist-info$' | tr '\n' ' ')"
  umoci repack --image "$work/layout:$hash" "$work/bundle"
  umoci config --image "$work/layout:$hash" --no-history --author "sql-audit-resilience" \
    --config.env PYTHONPATH=/opt/patroni/site --config.env PYTHONDONTWRITEBYTECODE=1 \
    --config.env PATH=/opt/patroni/site/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env LANG=C.UTF-8 --config.cmd patroni
  umoci rm --image "$work/layout:$PLATFORM_HASH"
  finish_image patroni "$hash" "$work"
}

# The service's layer: its packages' sources and the wheels pip resolved (their names and versions hashed).
service_sources_hash() {
  (cd "$REPO" && find "${SERVICE_PACKAGES[@]}" -name '*.py' -o -name '*.sql' -o -name '*.yaml' | LC_ALL=C sort \
    | xargs sha256sum | sha256sum | cut -c1-64)
}

service_image() {
  local hash work wheels toxiproxy
  base_image
  toxiproxy="$(toxiproxy_bin)"
  hash="$(input_hash "$(declare -f service_image)" "$BASE_REF" "${SERVICE_REQUIREMENTS[@]}" "$(service_sources_hash)" \
    "$(sha256sum "$toxiproxy" | cut -c1-64)")"
  SERVICE_HASH=$hash
  cached service "$hash" && return
  step "image service ($hash): base $BASE_TAG + ${SERVICE_PACKAGES[*]} + pip ${SERVICE_REQUIREMENTS[*]}"
  work="$(mktemp -d)"
  unpack_base "$work" "$hash"
  # The base image's python3 is Debian's 3.11, as this machine's: binary wheels built for it fit.
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --no-compile --target \
    "$work/bundle/rootfs/opt/sqlaudit/site" "${SERVICE_REQUIREMENTS[@]}"
  wheels="$(ls "$work/bundle/rootfs/opt/sqlaudit/site" | grep -E '\.dist-info$' | tr '\n' ' ')"
  ok "wheels: $wheels"
  for pkg in "${SERVICE_PACKAGES[@]}"; do
    (cd "$REPO" && find "$pkg" \( -name '*.py' -o -name '*.sql' -o -name '*.yaml' \) -print0 \
      | xargs -0 -I{} install -D -m 644 {} "$work/bundle/rootfs/opt/sqlaudit/app/{}")
  done
  install -D -m 755 "$toxiproxy" "$work/bundle/rootfs/usr/local/bin/toxiproxy-server"
  umoci repack --image "$work/layout:$hash" "$work/bundle"
  umoci config --image "$work/layout:$hash" --no-history --author "sql-audit-resilience" \
    --config.env PYTHONPATH=/opt/sqlaudit/app:/opt/sqlaudit/site --config.env PYTHONDONTWRITEBYTECODE=1 \
    --config.workingdir /opt/sqlaudit/app --config.cmd python3 --config.cmd=-m --config.cmd sqlaudit
  umoci rm --image "$work/layout:$BASE_TAG"
  finish_image service "$hash" "$work"
}

# The suite's files as git tracks them (nothing untracked or ignored gets into the image), and their hash.
runner_files() { git -C "$REPO" ls-files -z -- "${RUNNER_PATHS[@]}"; }
runner_requirements() {
  python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
    "$REPO/pyproject.toml"
}

runner_image() {
  local hash work root sources requirements
  base_image
  sources="$(cd "$REPO" && runner_files | xargs -0 sha256sum | sha256sum | cut -c1-64)"
  mapfile -t requirements < <(runner_requirements)
  hash="$(input_hash "$(declare -f runner_image)" "$BASE_REF" "${requirements[@]}" "$sources")"
  RUNNER_HASH=$hash
  cached runner "$hash" && return
  step "image runner ($hash): base $BASE_TAG + the suite + pip of pyproject.toml's ${#requirements[@]} dependencies"
  work="$(mktemp -d)"
  unpack_base "$work" "$hash"
  root="$work/bundle/rootfs"
  # Debian's python3 (3.11, as the base image's): binary wheels built for it fit, scripts say /usr/bin/python3.
  /usr/bin/python3 -m pip install --quiet --root-user-action=ignore --disable-pip-version-check --no-warn-conflicts \
    --no-compile --target \
    "$root/opt/resilience/site" "${requirements[@]}"
  (cd "$REPO" && runner_files | xargs -0 -I{} install -D -m 644 {} "$root/opt/resilience/app/{}")
  # deploy/k8s/base's commands: `resilience ...` (entry point) and `python -m faults.cli` (the cleanup container)
  printf '#!/bin/sh\nexec python3 -m resilience.cli "$@"\n' > "$root/usr/local/bin/resilience"
  chmod 755 "$root/usr/local/bin/resilience"
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
  # the user the manifests run as (runAsUser 10001), named so getpass and ~ work; its home is the pod's /tmp
  echo "resilience:x:$RUNNER_UID:$RUNNER_UID:sql-audit-resilience:/tmp:/usr/sbin/nologin" >> "$root/etc/passwd"
  echo "resilience:x:$RUNNER_UID:" >> "$root/etc/group"
  install -d -o "$RUNNER_UID" -g "$RUNNER_UID" "$root/var/lib/resilience/faults" "$root/var/lib/resilience/reports"
  umoci repack --image "$work/layout:$hash" "$work/bundle"
  umoci config --image "$work/layout:$hash" --no-history --author "sql-audit-resilience" \
    --config.env PYTHONPATH=/opt/resilience/app:/opt/resilience/site --config.env PYTHONDONTWRITEBYTECODE=1 \
    --config.env PYTHONUNBUFFERED=1 --config.env PATH=/opt/resilience/site/bin:/usr/local/bin:/usr/bin:/bin \
    --config.env HOME=/tmp --config.env MPLCONFIGDIR=/tmp/matplotlib \
    --config.env RESILIENCE_STATE_DIR=/var/lib/resilience/faults --config.env RESILIENCE_DATA_ROOT=/var/lib/resilience \
    --config.user "$RUNNER_UID:$RUNNER_UID" \
    --config.workingdir /var/lib/resilience --config.entrypoint resilience --config.cmd=--help
  umoci rm --image "$work/layout:$BASE_TAG"
  finish_image runner "$hash" "$work"
}

write_manifest() {
  {
    printf '{\n  "images": {\n'
    printf '    "platform": {"ref": "%s/platform:%s", "archive": "%s"},\n' "$IMAGE_REPO" "$PLATFORM_HASH" \
      "$IMAGES_DEST/platform-$PLATFORM_HASH.oci.tar"
    printf '    "patroni": {"ref": "%s/patroni:%s", "archive": "%s"},\n' "$IMAGE_REPO" "$PATRONI_HASH" \
      "$IMAGES_DEST/patroni-$PATRONI_HASH.oci.tar"
    printf '    "service": {"ref": "%s/service:%s", "archive": "%s"},\n' "$IMAGE_REPO" "$SERVICE_HASH" \
      "$IMAGES_DEST/service-$SERVICE_HASH.oci.tar"
    printf '    "runner": {"ref": "%s/runner:%s", "archive": "%s"}\n' "$IMAGE_REPO" "$RUNNER_HASH" \
      "$IMAGES_DEST/runner-$RUNNER_HASH.oci.tar"
    printf '  }\n}\n'
  } > "$MANIFEST.tmp"
  mv "$MANIFEST.tmp" "$MANIFEST"
  ok "manifest: $MANIFEST"
}

t0=$SECONDS
platform_image
ok "platform: $((SECONDS - t0)) s"
tp=$SECONDS
patroni_image
ok "patroni: $((SECONDS - tp)) s"
t1=$SECONDS
service_image
ok "service: $((SECONDS - t1)) s"
t2=$SECONDS
runner_image
ok "runner: $((SECONDS - t2)) s"
write_manifest
ok "system images: $((SECONDS - t0)) s"
