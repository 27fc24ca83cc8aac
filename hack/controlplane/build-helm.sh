#!/usr/bin/env bash
# Builds the helm CLI from its Go module (helm.sh/helm/v4) into $CACHE/helm-<version>/bin/helm for
# the chart tests. A second run finds the binary and builds nothing.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.1}"
CACHE="${MODELFLEET_CACHE:-$HOME/.cache/modelfleet}"
BIN="$CACHE/helm-$HELM_VERSION/bin"
LOGS="$CACHE/logs"
LOG="$LOGS/build-helm.log"
mkdir -p "$BIN" "$LOGS"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN=local

if [ -x "$BIN/helm" ]; then
  echo "build: helm $HELM_VERSION cached ($BIN/helm)"
  exit 0
fi
echo "build: helm $HELM_VERSION (log: $LOG)"
start=$SECONDS
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
# helm's version package reports what --version prints; nice: other builds share the cores.
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.metadata="
if ! GOBIN="$gobin" nice -n 10 go install -ldflags "$ldflags" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >"$LOG" 2>&1; then
  echo "build step 'helm' failed; last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2
  exit 1
fi
mv "$gobin/helm" "$BIN/helm"
echo "build: helm $HELM_VERSION done in $((SECONDS - start))s: $("$BIN/helm" version --short)"
