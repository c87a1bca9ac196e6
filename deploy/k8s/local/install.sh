#!/usr/bin/env bash
# Build and cache everything the local single-node Kubernetes cluster runs (`python -m cluster up`,
# docs/cluster.md): idempotent, a few seconds when everything is cached.
#
#   bash deploy/k8s/local/install.sh            # install what is missing, print timings
#   bash deploy/k8s/local/install.sh --force    # rebuild our binaries and images (not Debian's packages)
#   bash deploy/k8s/local/install.sh --print-manifest   # where the manifest of the install is
#
# What it installs:
#   1. Debian packages: containerd 1.6, runc, CNI plugins, iptables, ipset, conntrack, socat, debootstrap, umoci,
#      gcc.
#   2. etcd and kube-apiserver v$K8S_VERSION: deploy/k8s/envtest/install.sh (cached there, shared with tests/k8s).
#   3. kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl v$K8S_VERSION in ONE `go build`,
#      from the Go module proxy with envtest's pinned module graph (its go.mod and go.sum are copied), so
#      every package envtest compiled is a build-cache hit and only the rest is compiled.
#   4. kube-router v$KUBE_ROUTER_VERSION (`go install`; NetworkPolicy enforcement, firewall-only mode).
#   5. CoreDNS v$COREDNS_VERSION with only the plugins the cluster's Corefile uses (a tiny main module:
#      no cloud-provider SDKs to compile), static, for the CoreDNS image.
#   5b. kube-state-metrics v$KSM_VERSION (static; the proxy refuses its version list, so a tiny main module
#      `go get`s it at that version), for the kube-state-metrics image beside the system's Prometheus.
#   6. OCI image archives, no registry: pause (Kubernetes' own pause.c, static), coredns, kube-state-metrics and
#      the base image (debootstrap --variant=minbase + python3). umoci packs each root file system as a one-layer image.
#      Each archive is named by a hash of its inputs (recipe, versions, sources), so a changed recipe builds
#      anew and an unchanged one is never rebuilt.
#   7. A manifest ($CACHE_ROOT/local-cluster.json) naming every binary and image: what `cluster up` reads; the
#      add-ons' images in their own ($CACHE_ROOT/local-addons.json).
#   8. The images of the system under test (deploy/k8s/local/images.sh: platform, service), listed in
#      $CACHE_ROOT/local-system.json: what `cluster deploy` reads.
#
# Binaries land in /var/cache/sql-audit-resilience/k8s/ (override with RESILIENCE_K8S_CACHE), outside git.
# GOTOOLCHAIN=local: fail rather than fetch another Go. Run as root (apt, debootstrap).
# Exit codes: 0 installed (or already there), 1 a step failed, 2 bad argument, 3 a tool is missing (go).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENVTEST_INSTALL="$HERE/../envtest/install.sh"
K8S_VERSION="${K8S_VERSION:-1.37.2}"
KUBE_ROUTER_VERSION="${KUBE_ROUTER_VERSION:-2.1.0}"    # the only v2 the Go module proxy serves
COREDNS_VERSION="${COREDNS_VERSION:-1.15.0}"
KSM_VERSION="${KSM_VERSION:-2.16.0}"                     # newest the Go module proxy serves (2.14, 2.17: refused)
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_PACKAGES="python3"
PAUSE_TAG="3.10.2"                                       # build/pause/Makefile of k8s.io/kubernetes
CACHE_ROOT="${RESILIENCE_K8S_CACHE:-/var/cache/sql-audit-resilience/k8s}"
NODE_DEST="$CACHE_ROOT/node-v$K8S_VERSION"
KUBE_ROUTER_DEST="$CACHE_ROOT/kube-router-v$KUBE_ROUTER_VERSION"
COREDNS_DEST="$CACHE_ROOT/coredns-v$COREDNS_VERSION"
KSM_DEST="$CACHE_ROOT/kube-state-metrics-v$KSM_VERSION"
IMAGES_DEST="$CACHE_ROOT/images"
MANIFEST="$CACHE_ROOT/local-cluster.json"
ADDONS_MANIFEST="$CACHE_ROOT/local-addons.json"
IMAGE_REPO="localhost/sql-audit"
APT_PACKAGES=(containerd runc containernetworking-plugins iptables ipset conntrack iproute2 socat debootstrap umoci
              gcc libc6-dev)
NODE_COMMANDS=(kubelet kube-controller-manager kube-scheduler kube-proxy kubectl)
COREDNS_PLUGINS=(errors health ready kubernetes cache loop reload loadbalance log)

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --print-manifest) echo "$MANIFEST"; exit 0 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
ok() { printf '    %s\n' "$*"; }
TIMINGS=()
# timed NAME CMD...: run CMD, remember how long it took.
timed() {
  local name=$1 t0=$SECONDS; shift
  "$@"
  TIMINGS+=("$(printf '%-18s %5d s' "$name" $((SECONDS - t0)))")
}
need_go() {
  command -v go >/dev/null || { echo "go is not installed (needed to build $1)" >&2; exit 3; }
}

# --- 1. Debian packages -------------------------------------------------------------------------
apt_packages() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then ok "apt packages present"; return; fi
  step "apt: installing ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  # The package's own containerd service is not used: the cluster runs its own, in its own namespaces.
  $SUDO service containerd stop >/dev/null 2>&1 || true
}

# --- 2. etcd + kube-apiserver (shared with tests/k8s) -------------------------------------------
envtest() {
  K8S_VERSION="$K8S_VERSION" bash "$ENVTEST_INSTALL"
}

# --- 3. kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl -------------------
node_binaries() {
  if [[ $FORCE == 0 && -f $NODE_DEST/.complete ]]; then ok "node binaries cached in $NODE_DEST"; return; fi
  need_go "kubelet $K8S_VERSION"
  local envtest_dir work minor pkg ldflags targets=() cmd
  envtest_dir="$(K8S_VERSION="$K8S_VERSION" bash "$ENVTEST_INSTALL" --print-dir)"
  work="$(mktemp -d)"
  step "go: building ${NODE_COMMANDS[*]} v$K8S_VERSION in $work"
  # The same main module as envtest's (same requirements, same replaces): same package versions, so
  # the build cache it filled is reused. `go get` of the extra commands only adds modules.
  cp "$envtest_dir/go.mod" "$envtest_dir/go.sum" "$work/"
  mkdir -p "$work/cmd/etcd"
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' \
    > "$work/cmd/etcd/main.go"
  for cmd in "${NODE_COMMANDS[@]}"; do targets+=("k8s.io/kubernetes/cmd/$cmd"); done
  minor="${K8S_VERSION#*.}"
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*} -X $pkg.gitMinor=${minor%%.*}"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
  (
    cd "$work"
    export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local
    go get "${targets[@]/%/@v$K8S_VERSION}"
    rm -rf "$NODE_DEST.tmp"; mkdir -p "$NODE_DEST.tmp"
    go build -trimpath -ldflags "$ldflags" -o "$NODE_DEST.tmp/" "${targets[@]}"
    for cmd in "${NODE_COMMANDS[@]}"; do
      "$NODE_DEST.tmp/$cmd" --version 2>/dev/null || "$NODE_DEST.tmp/$cmd" version --client
    done
    cp go.mod go.sum "$NODE_DEST.tmp/"
  )
  rm -rf "$work"
  touch "$NODE_DEST.tmp/.complete"
  rm -rf "$NODE_DEST"; mv "$NODE_DEST.tmp" "$NODE_DEST"
  ok "node binaries in $NODE_DEST"
}

# --- 4. kube-router -----------------------------------------------------------------------------
kube_router() {
  if [[ $FORCE == 0 && -x $KUBE_ROUTER_DEST/kube-router ]]; then ok "kube-router cached in $KUBE_ROUTER_DEST"; return; fi
  need_go "kube-router v$KUBE_ROUTER_VERSION"
  step "go: building kube-router v$KUBE_ROUTER_VERSION"
  local mod=github.com/cloudnativelabs/kube-router/v2
  rm -rf "$KUBE_ROUTER_DEST.tmp"; mkdir -p "$KUBE_ROUTER_DEST.tmp"
  GOBIN="$KUBE_ROUTER_DEST.tmp" GOFLAGS="-buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w -X $mod/pkg/version.Version=v$KUBE_ROUTER_VERSION" \
    "$mod/cmd/kube-router@v$KUBE_ROUTER_VERSION"
  "$KUBE_ROUTER_DEST.tmp/kube-router" --version
  rm -rf "$KUBE_ROUTER_DEST"; mv "$KUBE_ROUTER_DEST.tmp" "$KUBE_ROUTER_DEST"
}

# --- 5. CoreDNS with the Corefile's plugins only ------------------------------------------------
coredns() {
  if [[ $FORCE == 0 && -x $COREDNS_DEST/coredns ]]; then ok "coredns cached in $COREDNS_DEST"; return; fi
  need_go "coredns v$COREDNS_VERSION"
  step "go: building coredns v$COREDNS_VERSION (plugins: ${COREDNS_PLUGINS[*]})"
  local work plugin
  work="$(mktemp -d)"
  {
    printf '// CoreDNS with only the plugins the local cluster uses.\npackage main\n\nimport (\n'
    printf '\t"github.com/coredns/coredns/coremain"\n\n'
    for plugin in "${COREDNS_PLUGINS[@]}"; do printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$plugin"; done
    printf ')\n\nfunc main() { coremain.Run() }\n'
  } > "$work/main.go"
  printf 'module sqlaudit.local/coredns\n\ngo 1.26.0\n' > "$work/go.mod"
  rm -rf "$COREDNS_DEST.tmp"; mkdir -p "$COREDNS_DEST.tmp"
  (
    cd "$work"
    export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
    go get "github.com/coredns/coredns@v$COREDNS_VERSION"
    go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=v$COREDNS_VERSION" \
      -o "$COREDNS_DEST.tmp/coredns" .
  )
  rm -rf "$work"
  "$COREDNS_DEST.tmp/coredns" -version
  "$COREDNS_DEST.tmp/coredns" -plugins | grep -q kubernetes
  rm -rf "$COREDNS_DEST"; mv "$COREDNS_DEST.tmp" "$COREDNS_DEST"
}

# --- 5b. kube-state-metrics ---------------------------------------------------------------------
# `go install k8s.io/kube-state-metrics/v2@vX` fails here: it reads the module's version list (for deprecation
# notices), which the proxy refuses. `go get` of the exact version in a main module of ours does not, and `go build`
# of its main package from there builds the same binary.
kube_state_metrics() {
  if [[ $FORCE == 0 && -x $KSM_DEST/kube-state-metrics ]]; then ok "kube-state-metrics cached in $KSM_DEST"; return; fi
  need_go "kube-state-metrics v$KSM_VERSION"
  step "go: building kube-state-metrics v$KSM_VERSION"
  local work mod=k8s.io/kube-state-metrics/v2
  work="$(mktemp -d)"
  printf 'module sqlaudit.local/kube-state-metrics\n\ngo 1.26.0\n' > "$work/go.mod"
  rm -rf "$KSM_DEST.tmp"; mkdir -p "$KSM_DEST.tmp"
  (
    cd "$work"
    export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
    go get "$mod@v$KSM_VERSION"
    go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=v$KSM_VERSION" \
      -o "$KSM_DEST.tmp/kube-state-metrics" "$mod"
  )
  rm -rf "$work"
  "$KSM_DEST.tmp/kube-state-metrics" version
  rm -rf "$KSM_DEST"; mv "$KSM_DEST.tmp" "$KSM_DEST"
}

# --- 6. images ----------------------------------------------------------------------------------
# pack_image NAME HASH FILL [umoci config arguments...]: an OCI archive (one layer) of the root file
# system FILL writes into the directory it is given. Cached by NAME and HASH; older hashes are deleted.
pack_image() {
  local name=$1 hash=$2 fill=$3 work archive
  shift 3
  archive="$IMAGES_DEST/$name-$hash.oci.tar"
  if [[ $FORCE == 0 && -f $archive ]]; then ok "image $name cached: $archive"; return; fi
  step "image $name ($hash)"
  work="$(mktemp -d)"
  umoci init --layout "$work/layout"
  umoci new --image "$work/layout:$hash"
  umoci unpack --image "$work/layout:$hash" "$work/bundle"
  "$fill" "$work/bundle/rootfs"
  umoci repack --image "$work/layout:$hash" "$work/bundle"
  umoci config --image "$work/layout:$hash" --no-history --author "sql-audit-resilience" \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  umoci gc --layout "$work/layout"
  mkdir -p "$IMAGES_DEST"
  tar -C "$work/layout" -cf "$archive.tmp" .
  mv "$archive.tmp" "$archive"
  find "$IMAGES_DEST" -maxdepth 1 -name "$name-*.oci.tar" ! -name "$name-$hash.oci.tar" -delete
  rm -rf "$work"
  ok "$archive ($(du -h "$archive" | cut -f1))"
}

pause_source() { echo "$(go env GOMODCACHE)/k8s.io/kubernetes@v$K8S_VERSION/build/pause/linux/pause.c"; }
pause_rootfs() {
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_TAG-sqlaudit" -o "$1/pause" "$(pause_source)"
}
coredns_rootfs() {
  install -m 755 "$COREDNS_DEST/coredns" "$1/coredns"
}
# a static binary and a user of no privilege (kube-state-metrics' own image runs as 65534)
ksm_rootfs() {
  install -m 755 "$KSM_DEST/kube-state-metrics" "$1/kube-state-metrics"
  mkdir -p "$1/etc"
  echo "nobody:x:65534:65534:nobody:/:/sbin/nologin" > "$1/etc/passwd"
}
# debootstrap minbase + BASE_PACKAGES, without apt lists, caches, docs, man pages, locales, device nodes.
base_rootfs() {
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$DEBIAN_SUITE" "$1" "$DEBIAN_MIRROR" >"$1.log" 2>&1 \
    || { tail -20 "$1.log" >&2; return 1; }
  rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/* \
    "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/locale/* "$1"/var/log/*.log "$1"/var/log/apt/*
  find "$1/usr/share/doc" -type f ! -name copyright -delete
  find "$1/dev" -mindepth 1 -delete
}

# sha256 (12 hex) of the arguments' text: a recipe's source and its inputs.
input_hash() { printf '%s\n' "$@" | sha256sum | cut -c1-12; }

images() {
  local pause_hash coredns_hash ksm_hash base_hash
  [ -f "$(pause_source)" ] || go mod download "k8s.io/kubernetes@v$K8S_VERSION"
  pause_hash="$(input_hash "$(declare -f pause_rootfs)" "$PAUSE_TAG" "$(sha256sum < "$(pause_source)")" \
    "$(gcc --version | head -1)")"
  coredns_hash="$(input_hash "$(declare -f coredns_rootfs)" "$(sha256sum < "$COREDNS_DEST/coredns")")"
  ksm_hash="$(input_hash "$(declare -f ksm_rootfs)" "$(sha256sum < "$KSM_DEST/kube-state-metrics")")"
  base_hash="$(input_hash "$(declare -f base_rootfs)" "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$BASE_PACKAGES" \
    "$(dpkg-query -W -f='${Version}' debootstrap)")"
  pack_image pause "$pause_hash" pause_rootfs --config.entrypoint /pause --clear config.cmd
  pack_image coredns "$coredns_hash" coredns_rootfs --config.entrypoint /coredns --clear config.cmd
  pack_image kube-state-metrics "$ksm_hash" ksm_rootfs --config.entrypoint /kube-state-metrics --clear config.cmd \
    --config.user 65534:65534
  pack_image base "$base_hash" base_rootfs --config.cmd python3 --config.env LANG=C.UTF-8
  IMAGE_HASHES=("pause:$pause_hash" "coredns:$coredns_hash" "base:$base_hash")
  KSM_HASH=$ksm_hash
}

# --- 7. the manifests ---
# The add-ons (kube-state-metrics) have a manifest of their own, local-addons.json: an older checkout's install.sh
# (a worktree, a CI clone of an older commit, on the same machine) rewrites local-cluster.json whole, without the
# entries it does not know; it never touches this file.
write_addons_manifest() {
  printf '{\n  "images": {\n    "kube-state-metrics": {"ref": "%s/kube-state-metrics:%s", "archive": "%s"}\n  }\n}\n' \
    "$IMAGE_REPO" "$KSM_HASH" "$IMAGES_DEST/kube-state-metrics-$KSM_HASH.oci.tar" > "$ADDONS_MANIFEST.tmp"
  mv "$ADDONS_MANIFEST.tmp" "$ADDONS_MANIFEST"
  ok "manifest: $ADDONS_MANIFEST"
}
# --- the cluster's ----------------------------------------------------------------------------
write_manifest() {
  local envtest_dir first=1 entry name hash
  envtest_dir="$(K8S_VERSION="$K8S_VERSION" bash "$ENVTEST_INSTALL" --print-dir)"
  {
    printf '{\n  "kubernetes_version": "%s",\n  "binaries": {\n' "$K8S_VERSION"
    printf '    "etcd": "%s",\n    "kube-apiserver": "%s",\n' "$envtest_dir/etcd" "$envtest_dir/kube-apiserver"
    for name in "${NODE_COMMANDS[@]}"; do printf '    "%s": "%s",\n' "$name" "$NODE_DEST/$name"; done
    printf '    "kube-router": "%s"\n  },\n  "images": {\n' "$KUBE_ROUTER_DEST/kube-router"
    for entry in "${IMAGE_HASHES[@]}"; do
      name="${entry%%:*}"; hash="${entry#*:}"
      [ $first = 1 ] || printf ',\n'
      first=0
      printf '    "%s": {"ref": "%s/%s:%s", "archive": "%s"}' "$name" "$IMAGE_REPO" "$name" "$hash" \
        "$IMAGES_DEST/$name-$hash.oci.tar"
    done
    printf '\n  }\n}\n'
  } > "$MANIFEST.tmp"
  mv "$MANIFEST.tmp" "$MANIFEST"
  ok "manifest: $MANIFEST"
}

total_start=$SECONDS
$SUDO mkdir -p "$CACHE_ROOT"
timed apt apt_packages
timed envtest envtest
timed node-binaries node_binaries
timed kube-router kube_router
timed coredns coredns
timed kube-state-metrics kube_state_metrics
timed images images
timed manifest write_manifest
timed addons-manifest write_addons_manifest
# 8. The system under test's images (platform, service): deploy/k8s/local/images.sh, its own manifest.
system_images() { bash "$HERE/images.sh" $([ $FORCE = 1 ] && echo --force); }
timed system-images system_images
step "timings"
for line in "${TIMINGS[@]}"; do ok "$line"; done
ok "$(printf '%-18s %5d s' total $((SECONDS - total_start)))"
