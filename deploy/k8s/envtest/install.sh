#!/usr/bin/env bash
# Build a pinned kube-apiserver and etcd for the API-server tests (tests/k8s, marker k8s),
# the way controller-runtime's envtest runs them: plain processes, no nodes, no containers;
# and a pinned kustomize for the tests that render deploy/k8s (`kustomize build`).
#
#   bash deploy/k8s/envtest/install.sh            # build if missing (no-op when cached)
#   bash deploy/k8s/envtest/install.sh --force    # rebuild
#   bash deploy/k8s/envtest/install.sh --print-dir         # where kube-apiserver and etcd are
#   bash deploy/k8s/envtest/install.sh --print-kustomize   # the kustomize binary
#
# Binaries land in /var/cache/sql-audit-resilience/k8s/v<version>/ and kustomize in
# /var/cache/sql-audit-resilience/k8s/kustomize-v<version>/ (outside git; override the root
# with RESILIENCE_K8S_CACHE). kustomize is `go install`ed from the Go module proxy
# (sigs.k8s.io/kustomize/kustomize/v5; v5.8.2 is the newest whose go.mod Go 1.26 accepts).
# The other sources come from the Go module proxy too: k8s.io/kubernetes cannot be
# `go install`ed (its go.mod replaces the staging modules k8s.io/api, ... with local paths), so a
# throwaway main module pins k8s.io/kubernetes and replaces every staging module with the matching
# published v0.<minor>.<patch>. etcd is built from go.etcd.io/etcd/server/v3 at the version
# k8s.io/kubernetes itself requires. Cold build on 2 cores: see docs/staging.md ("Tests").
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.0}"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-5.8.2}"
CACHE_ROOT="${RESILIENCE_K8S_CACHE:-/var/cache/sql-audit-resilience/k8s}"
DEST="$CACHE_ROOT/v$K8S_VERSION"
KUSTOMIZE_DEST="$CACHE_ROOT/kustomize-v$KUSTOMIZE_VERSION"
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --print-dir) echo "$DEST"; exit 0 ;;
    --print-kustomize) echo "$KUSTOMIZE_DEST/kustomize"; exit 0 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

need_go() {
  command -v go >/dev/null || { echo "go is not installed (needed to build $1)" >&2; exit 3; }
}

# kustomize: built into a temporary directory, checked, then moved in place (a killed build leaves
# no half binary where the tests look). GOTOOLCHAIN=local: fail rather than fetch another Go.
if [[ $FORCE == 1 || ! -x $KUSTOMIZE_DEST/kustomize ]]; then
  need_go "kustomize v$KUSTOMIZE_VERSION"
  echo "building kustomize v$KUSTOMIZE_VERSION"
  rm -rf "$KUSTOMIZE_DEST.tmp"
  mkdir -p "$KUSTOMIZE_DEST.tmp"
  GOBIN="$KUSTOMIZE_DEST.tmp" GOFLAGS="-buildvcs=false" GOTOOLCHAIN=local \
    go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kustomize/kustomize/v5@v$KUSTOMIZE_VERSION"
  "$KUSTOMIZE_DEST.tmp/kustomize" version
  rm -rf "$KUSTOMIZE_DEST"
  mv "$KUSTOMIZE_DEST.tmp" "$KUSTOMIZE_DEST"
fi
echo "kustomize v$KUSTOMIZE_VERSION in $KUSTOMIZE_DEST"

if [[ $FORCE == 0 && -x $DEST/kube-apiserver && -x $DEST/etcd && -f $DEST/.complete ]]; then
  echo "envtest binaries cached in $DEST"
  exit 0
fi
need_go "kube-apiserver $K8S_VERSION"

minor="${K8S_VERSION#*.}"; staging="v0.${minor}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
start=$(date +%s)
echo "building kube-apiserver v$K8S_VERSION and etcd v$ETCD_VERSION in $work (this takes a while the first time)"

cat > go.mod <<MOD
module envtest.local/build

go 1.26.0

require (
	k8s.io/kubernetes v$K8S_VERSION
	go.etcd.io/etcd/server/v3 v$ETCD_VERSION
)
MOD
# Every staging module k8s.io/kubernetes replaces with a local path, pinned to the published version.
gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')"
{
  echo "replace ("
  sed -n '/^replace (/,/^)/p' "$gomod" | sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"$staging"'#p'
  echo ")"
} >> go.mod

mkdir -p cmd/etcd
cat > cmd/etcd/main.go <<'GO'
// etcd server, built from the module version k8s.io/kubernetes requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

export GOFLAGS="-mod=mod -buildvcs=false"
go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "go.etcd.io/etcd/server/v3/etcdmain@v$ETCD_VERSION"
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*} -X $pkg.gitMinor=${minor%%.*}"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
mkdir -p "$DEST.tmp"
go build -trimpath -ldflags "$ldflags" -o "$DEST.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "-s -w" -o "$DEST.tmp/etcd" ./cmd/etcd
"$DEST.tmp/kube-apiserver" --version
"$DEST.tmp/etcd" --version | head -1
cp go.mod go.sum "$DEST.tmp/"
echo "built in $(( $(date +%s) - start )) s on $(nproc) cores" | tee "$DEST.tmp/.complete"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "envtest binaries in $DEST"
