#!/usr/bin/env bash
# Builds the local control plane from Go modules into a cache outside the repo:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd and the real node's kubelet
# and kube-proxy from one outside module that requires k8s.io/kubernetes and pins every staging
# module to the matching v0.X.Y (k8s.io/kubernetes itself points them at ./staging, so `go install` is
# refused), and kwok with `go install`. A second run finds the binaries and builds nothing.
set -euo pipefail
source "$(dirname "$0")/../build-common.sh"

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
BIN="$CACHE/k8s-$K8S_VERSION/bin"
KWOK_BIN="$CACHE/kwok-$KWOK_VERSION/bin"
KUBE_COMMANDS="kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy"
mkdir -p "$BIN" "$KWOK_BIN"

build_kubernetes() {
  local mod="$CACHE/k8s-$K8S_VERSION/module"
  mkdir -p "$mod"
  local upstream_mod
  upstream_mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local minor=${K8S_VERSION#v1.}
  local go_line godebug_line
  go_line=$(grep -m1 '^go ' "$upstream_mod")
  godebug_line=$(grep -m1 '^godebug ' "$upstream_mod" || true)
  {
    echo "module modelfleet.local/controlplane"
    echo
    echo "$go_line"
    echo "$godebug_line"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # every `k8s.io/X => ./staging/src/k8s.io/X` of upstream becomes `k8s.io/X => k8s.io/X v0.<minor>`
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 v0.'"$minor"'#p' "$upstream_mod"
  } >"$mod/go.mod"
  cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$mod" && go get "k8s.io/kubernetes@$K8S_VERSION" && go mod tidy)
  local pkg="k8s.io/component-base/version"
  local major=1 minor_num=${minor%%.*}
  local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor_num -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor_num"
  for cmd in $KUBE_COMMANDS; do
    [ -x "$BIN/$cmd" ] && continue
    (cd "$mod" && nice -n 10 go build -ldflags "$ldflags" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd") && mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  done
  if [ ! -x "$BIN/etcd" ]; then
    (cd "$mod" && go build -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3) && mv "$BIN/etcd.tmp" "$BIN/etcd"
  fi
}

build_kwok() {
  GOBIN="$KWOK_BIN" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

have_all() {
  for b in $KUBE_COMMANDS etcd; do [ -x "$BIN/$b" ] || return 1; done
  [ -x "$KWOK_BIN/kwok" ]
}

if have_all; then
  echo "build: control plane $K8S_VERSION and kwok $KWOK_VERSION already in $CACHE"
  exit 0
fi
command -v go >/dev/null || { echo "build step 'go' failed: Go is not installed (https://go.dev/dl)" >&2; exit 1; }
[ -x "$KWOK_BIN/kwok" ] || step kwok build_kwok
step kubernetes build_kubernetes
echo "build: done, binaries in $BIN and $KWOK_BIN"
