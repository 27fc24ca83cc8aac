#!/usr/bin/env bash
# Builds the third-party components the tests run against the local control plane from their Go
# modules (fetched through the Go module proxy into the module cache; nothing is copied into the repo):
#   kueue        sigs.k8s.io/kueue                    cmd/kueue -> kueue
#   prometheus   github.com/prometheus/prometheus     cmd/prometheus -> prometheus (Kubernetes SD only,
#                                                     no web UI assets: the HTTP API is all tests use)
#   keda         github.com/kedacore/keda/v2          cmd/operator -> keda, cmd/adapter -> keda-adapter
#   http-add-on  github.com/kedacore/http-add-on      operator, interceptor, scaler
# into $MODELFLEET_CACHE/<component>-<version>/bin, keyed by version: a binary that is there is not
# built again. Usage: build.sh [component...] (default: all, in the order the tests need them).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../build-common.sh"
# shellcheck source=versions.env
source "$HERE/versions.env"
# A module zip may carry a go.work naming folders the zip leaves out (Prometheus's does).
export GOWORK=off

timed_step() {  # timed_step NAME CMD...: `step`, then how long it took (the figure for build budgets)
  local start=$SECONDS
  step "$@"
  echo "build: $1 took $((SECONDS - start)) s"
}

module_dir() {  # module_dir MODULE VERSION: the module's directory in the Go module cache
  (cd /tmp && go mod download -json "$1@$2") | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

go_build() {  # go_build MODULE VERSION OUT PACKAGE [go build flags...]: builds PACKAGE of the module
  local module=$1 version=$2 out=$3 package=$4; shift 4
  local dir
  dir=$(module_dir "$module" "$version")
  mkdir -p "$(dirname "$out")"
  # The module's own go.mod and go.sum decide every dependency (upstream's replace lines included),
  # as in upstream's own build; the build writes only to the Go build cache and to $out.
  (cd "$dir" && nice -n 10 go build "$@" -o "$out.tmp" "$package") && mv "$out.tmp" "$out"
}

build_kueue() {
  local bin="$CACHE/kueue-$KUEUE_VERSION/bin/kueue"
  [ -x "$bin" ] && return
  timed_step "kueue-$KUEUE_VERSION" go_build sigs.k8s.io/kueue "$KUEUE_VERSION" "$bin" ./cmd/kueue \
    -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION"
}

build_prometheus() {
  local bin="$CACHE/prometheus-$PROMETHEUS_VERSION/bin/prometheus"
  [ -x "$bin" ] && return
  # Upstream's build tags: remove_all_sd drops every service discovery but file and http, and
  # enable_kubernetes_sd adds Kubernetes back (plugins/*.go); without builtinassets the web UI is
  # served from files that are not there, while the HTTP API works as usual.
  local release="${PROMETHEUS_VERSION#v0.}"  # v0.316.0 -> 316.0 -> 3.16.0
  release="${release:0:1}.${release:1}"
  timed_step "prometheus-$PROMETHEUS_VERSION" go_build github.com/prometheus/prometheus "$PROMETHEUS_VERSION" "$bin" \
    ./cmd/prometheus -tags "netgo remove_all_sd enable_kubernetes_sd" \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release"
}

build_keda() {
  local dir="$CACHE/keda-$KEDA_VERSION/bin"
  local ldflags="-s -w -X github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION"
  [ -x "$dir/keda" ] || timed_step "keda-$KEDA_VERSION-operator" \
    go_build github.com/kedacore/keda/v2 "$KEDA_VERSION" "$dir/keda" ./cmd/operator -ldflags "$ldflags"
  [ -x "$dir/keda-adapter" ] || timed_step "keda-$KEDA_VERSION-adapter" \
    go_build github.com/kedacore/keda/v2 "$KEDA_VERSION" "$dir/keda-adapter" ./cmd/adapter -ldflags "$ldflags"
}

build_http_add_on() {
  local dir="$CACHE/keda-http-add-on-$KEDA_HTTP_ADD_ON_VERSION/bin"
  local ldflags="-s -w -X github.com/kedacore/http-add-on/pkg/build.version=$KEDA_HTTP_ADD_ON_VERSION"
  for part in operator interceptor scaler; do
    [ -x "$dir/$part" ] || timed_step "keda-http-add-on-$KEDA_HTTP_ADD_ON_VERSION-$part" \
      go_build github.com/kedacore/http-add-on "$KEDA_HTTP_ADD_ON_VERSION" "$dir/$part" "./$part" -ldflags "$ldflags"
  done
}

command -v go >/dev/null || { echo "build step 'go' failed: Go is not installed" >&2; exit 1; }
components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kueue prometheus keda http-add-on)
for component in "${components[@]}"; do
  case $component in
    kueue) build_kueue ;;
    prometheus) build_prometheus ;;
    keda) build_keda ;;
    http-add-on) build_http_add_on ;;
    *) echo "build: unknown component '$component' (kueue, prometheus, keda, http-add-on)" >&2; exit 2 ;;
  esac
done
echo "build: ${components[*]} ready in $CACHE"
