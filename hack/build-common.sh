# Sourced by the build scripts under hack/: the cache and log locations, the Go settings every build
# uses, and `step`, which runs one build step with its output in a log and, on failure, names the step
# and shows the end of its log.
CACHE="${MODELFLEET_CACHE:-$HOME/.cache/modelfleet}"
LOGS="$CACHE/logs"
mkdir -p "$LOGS"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN=local

step() {  # step NAME CMD...
  local name=$1; shift
  local log="$LOGS/build-$name.log"
  echo "build: $name (log: $log)"
  if ! "$@" >"$log" 2>&1; then
    echo "build step '$name' failed; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}
