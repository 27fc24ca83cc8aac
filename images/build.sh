#!/usr/bin/env bash
# Builds modelfleet's container images with Docker, from the repository root as build context.
#
#   images/build.sh [--registry REGISTRY] [--tag TAG] [--push] [--dry-run] [IMAGE...]
#
# IMAGE is operator, training-runtime, serving-ENGINE (vllm, sglang, tgi, lmdeploy, triton-trtllm) or
# runtime-cpu (default: all eight). Images are named
# REGISTRY/modelfleet-IMAGE:TAG (REGISTRY defaults to $MODELFLEET_REGISTRY, else none; TAG to the
# project version). --dry-run prints the docker commands instead of running them.
# Extra build arguments pass through the environment, e.g.
#   BUILD_ARGS="--build-arg FLASH_ATTN=0 --build-arg MAX_JOBS=4" images/build.sh training-runtime
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

registry="${MODELFLEET_REGISTRY:-}"
tag=""
push=0
dry_run=0
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --push) push=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    operator|training-runtime|serving-vllm|serving-sglang|serving-tgi|serving-lmdeploy|serving-triton-trtllm|runtime-cpu)
      images+=("$1"); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "images/build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#images[@]} -gt 0 ] || images=(operator training-runtime serving-vllm serving-sglang serving-tgi serving-lmdeploy
  serving-triton-trtllm runtime-cpu)

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -n1)
tag="${tag:-$version}"
revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

run() {
  if [ "$dry_run" = 1 ]; then echo "$*"; else "$@"; fi
}

if [ "$dry_run" = 0 ]; then
  if ! command -v docker >/dev/null 2>&1; then
    echo "images/build.sh: the docker CLI is not installed; install Docker (or run with --dry-run to see the commands)." >&2
    exit 1
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "images/build.sh: the docker CLI cannot reach a Docker engine (is the daemon running, may you use its socket?)." >&2
    exit 1
  fi
fi

for image in "${images[@]}"; do
  ref="${registry:+$registry/}modelfleet-$image:$tag"
  # shellcheck disable=SC2086  # BUILD_ARGS is a list of words on purpose
  run docker build --file "$ROOT/images/$image.Dockerfile" --tag "$ref" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created" \
    ${BUILD_ARGS:-} "$ROOT"
  if [ "$push" = 1 ]; then
    run docker push "$ref"
  fi
done
