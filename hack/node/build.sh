#!/usr/bin/env bash
# Builds what the local control plane's real worker node runs, into a cache outside the repo, keyed by
# version (kubelet and kube-proxy come from hack/controlplane/build.sh, from the control plane's own
# k8s.io/kubernetes module):
#   containerd, ctr, containerd-shim-runc-v2  github.com/containerd/containerd/v2 (`go install`)
#   bridge, host-local, loopback, portmap     github.com/containernetworking/plugins (`go install`)
#   crictl                                    sigs.k8s.io/cri-tools (`go install`): tears pods down
#   coredns                                   github.com/coredns/coredns, from an outside main module
#                                             that links only the plugins the node's Corefile uses
#   pause                                     build/pause/linux/pause.c of the k8s.io/kubernetes module,
#                                             compiled static: the pod sandbox (no registry to pull from)
#   runc, nft, busybox                        Debian's runc, nftables (kube-proxy's nftables mode
#                                             runs `nft`) and busybox-static (a small test image)
# A second run finds everything and builds nothing. `build.sh --debian-packages` installs only the
# Debian packages (make's set-up does that before its lanes start: two apt runs at once would fight
# over dpkg's lock).
set -euo pipefail
source "$(dirname "$0")/../build-common.sh"

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-v1.10.0}"
CRI_TOOLS_VERSION="${CRI_TOOLS_VERSION:-v1.37.0}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
CONTAINERD_BIN="$CACHE/containerd-$CONTAINERD_VERSION/bin"
CNI_BIN="$CACHE/cni-plugins-$CNI_PLUGINS_VERSION/bin"
CRICTL_BIN="$CACHE/cri-tools-$CRI_TOOLS_VERSION/bin"
COREDNS_DIR="$CACHE/coredns-$COREDNS_VERSION"
PAUSE_BIN="$CACHE/pause-$K8S_VERSION/bin"
have() {  # have DIR NAME...: every NAME is an executable in DIR
  local dir=$1; shift
  for name in "$@"; do [ -x "$dir/$name" ] || return 1; done
}

go_install() {  # go_install DEST LDFLAGS PACKAGE@VERSION...: installs into a temp dir, then moves into DEST
  local dest=$1 ldflags=$2; shift 2
  local gobin
  gobin=$(mktemp -d)
  GOBIN="$gobin" nice -n 10 go install -ldflags "$ldflags" "$@"
  mkdir -p "$dest"
  mv "$gobin"/* "$dest"/
  rm -rf "$gobin"
}

build_containerd() {
  local mod=github.com/containerd/containerd/v2
  go_install "$CONTAINERD_BIN" "-s -w -X $mod/version.Version=$CONTAINERD_VERSION" \
    "$mod/cmd/containerd@$CONTAINERD_VERSION" "$mod/cmd/ctr@$CONTAINERD_VERSION" \
    "$mod/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
}

build_cni_plugins() {
  local mod=github.com/containernetworking/plugins/plugins
  go_install "$CNI_BIN" "-s -w" "$mod/main/bridge@$CNI_PLUGINS_VERSION" \
    "$mod/main/loopback@$CNI_PLUGINS_VERSION" "$mod/ipam/host-local@$CNI_PLUGINS_VERSION" \
    "$mod/meta/portmap@$CNI_PLUGINS_VERSION"
}

build_crictl() {
  go_install "$CRICTL_BIN" "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
}

build_coredns() {
  # CoreDNS's own main imports every plugin (cloud DNS SDKs included); ours links the ones the node's
  # Corefile names. The directive order lives in core/dnsserver, so it is upstream's either way.
  local mod="$COREDNS_DIR/module"
  mkdir -p "$mod" "$COREDNS_DIR/bin"
  cat >"$mod/go.mod" <<EOF
module modelfleet.local/coredns

go 1.26

require github.com/coredns/coredns $COREDNS_VERSION
EOF
  cat >"$mod/main.go" <<'GO'
// CoreDNS with the plugins the local node's Corefile uses.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
GO
  (cd "$mod" && go mod tidy)
  (cd "$mod" && nice -n 10 go build -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
    -o "$COREDNS_DIR/bin/coredns.tmp" .)
  mv "$COREDNS_DIR/bin/coredns.tmp" "$COREDNS_DIR/bin/coredns"
}

build_pause() {
  local dir
  dir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$PAUSE_BIN"
  # the flags of build/pause/Makefile: a static binary that only reaps children and waits for a signal
  gcc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION-modelfleet" -o "$PAUSE_BIN/pause.tmp" \
    "$dir/build/pause/linux/pause.c"
  strip "$PAUSE_BIN/pause.tmp"
  mv "$PAUSE_BIN/pause.tmp" "$PAUSE_BIN/pause"
}

MISSING_DEBIAN_PACKAGES=()
command -v runc >/dev/null || MISSING_DEBIAN_PACKAGES+=(runc)
command -v nft >/dev/null || MISSING_DEBIAN_PACKAGES+=(nftables)
command -v gcc >/dev/null || MISSING_DEBIAN_PACKAGES+=(gcc libc6-dev)
[ -x /bin/busybox ] || MISSING_DEBIAN_PACKAGES+=(busybox-static)

install_debian_packages() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${MISSING_DEBIAN_PACKAGES[@]}"
}

command -v go >/dev/null || { echo "build step 'go' failed: Go is not installed (https://go.dev/dl)" >&2; exit 1; }
[ ${#MISSING_DEBIAN_PACKAGES[@]} -eq 0 ] || step debian-packages install_debian_packages
[ "${1:-}" != --debian-packages ] || exit 0
have "$PAUSE_BIN" pause || step pause build_pause
have "$CONTAINERD_BIN" containerd ctr containerd-shim-runc-v2 || step containerd build_containerd
have "$CNI_BIN" bridge host-local loopback portmap || step cni-plugins build_cni_plugins
have "$CRICTL_BIN" crictl || step crictl build_crictl
have "$COREDNS_DIR/bin" coredns || step coredns build_coredns
echo "build: node components ready (containerd $CONTAINERD_VERSION, CNI plugins $CNI_PLUGINS_VERSION," \
  "crictl $CRI_TOOLS_VERSION, CoreDNS $COREDNS_VERSION, pause $K8S_VERSION, $(runc --version | head -1))"
