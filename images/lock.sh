#!/usr/bin/env bash
# Locks each image's Python dependencies into images/requirements/<extra>.txt (exact versions and
# hashes, for `uv pip install --require-hashes`), resolved from pyproject.toml's extras for the
# images' platform: CPython 3.12 on x86_64 glibc (the CPU runtime image: Debian 12's CPython 3.11). Needs PyPI; rerun after changing an extra.
#   operator.txt          .[operator]
#   train.txt             .[train] with torch held to the last PyPI build on CUDA 12 (see below)
#   train-build.txt       what DeepSpeed's and flash-attn's builds import, at train.txt's versions
#   flash-attn.txt        flash-attn alone (an optional source build in the training image)
#   serving-launcher.txt  .[launcher]: the launcher layer of every engine's serving image, installed
#                         into a venv of its own over the engine image's Python (3.11 or 3.12)
#   runtime-cpu.txt       .[train,serve] for the CPU runtime image (Debian 12's CPython 3.11), minus
#                         what only a GPU loads (see below) and DeepSpeed
#   runtime-cpu-deepspeed.txt  DeepSpeed alone, built in that image with its CPU ops compiled
#   dev.txt               the dev venv's extras (make deps), for the host's CPython 3.11
set -euo pipefail
cd "$(dirname "$0")/.."

UV="${UV:-$(command -v uv || echo "${MODELFLEET_CACHE:-$HOME/.cache/modelfleet}/venv/bin/uv")}"
OUT=images/requirements
# Keep this in step with the training Dockerfile's ARG of the same name.
FLASH_ATTN_VERSION=2.8.3.post2
mkdir -p "$OUT"

compile() {  # compile OUTPUT UV-ARGS... (PYTHON_VERSION overrides the images' 3.12)
  local output=$1; shift
  "$UV" pip compile --quiet --python-version "${PYTHON_VERSION:-3.12}" --python-platform x86_64-manylinux_2_28 \
    --no-python-downloads --generate-hashes --no-header --output-file "$output" "$@"
}

compile "$OUT/operator.txt" pyproject.toml --extra operator
# torch 2.10 is the newest PyPI torch linked against CUDA 12 (2.11+ use CUDA 13, which needs an R580+
# driver that AKS GPU node images may not have); DeepSpeed's ops must be built with the same CUDA.
compile "$OUT/train.txt" pyproject.toml --extra train --constraints images/requirements/train-constraints.txt
compile "$OUT/train-build.txt" images/requirements/train-build.in --constraints "$OUT/train.txt"
# --no-deps: resolving flash-attn's dependencies would build its sdist, whose setup.py imports torch.
# Its only run-time dependency besides torch is einops, named here.
printf 'flash-attn==%s\neinops\n' "$FLASH_ATTN_VERSION" | compile "$OUT/flash-attn.txt" --no-deps -

# The launcher layer of the engine images (images/serving-*.Dockerfile). It lives in a venv of its
# own, so it is resolved alone, not with the engine: nothing of the engine's environment changes, and
# the engine's packages never shadow the launcher's. Resolved for the oldest Python among the engine
# images (TGI's 3.11; the others have 3.12); the hashes cover every wheel of each pinned version, so
# each image's Python installs its own.
PYTHON_VERSION=3.11 compile "$OUT/serving-launcher.txt" pyproject.toml --extra launcher

# The dev venv (`make deps`): the extras it installs, for this machine's CPython 3.11 (Debian 12's).
# make installs each extra with this lock as constraints (uv checks the hashes there too), so a fresh
# clone, CI and every developer test the same versions, not PyPI's newest of the day.
PYTHON_VERSION=3.11 compile "$OUT/dev.txt" pyproject.toml --extra operator --extra train --extra serve --extra dev

# The CPU runtime image. PyPI's x86_64 torch is the CUDA build: libtorch links libtorch_cuda, which
# links cuBLAS, cuDNN, cuFFT, cuSPARSE(Lt), NCCL, NVSHMEM, cuFile, CUPTI, NVRTC and the CUDA runtime,
# so without those wheels `import torch` fails ("libcublasLt.so.*[0-9] not found"), even on a CPU.
# Left out is only what nothing loads on a CPU: triton (torch.compile's GPU code generator, 1 GB),
# cuSOLVER (libtorch_cuda_linalg, loaded on the first GPU linear-algebra call), the CCCL headers,
# NVTX and the cuda-python bindings. DeepSpeed gets a file of its own: the image builds it from
# source with its CPU ops compiled, without uv's cache (a cached wheel would lack them).
cpu_unused=(triton nvidia-cusolver nvidia-cuda-cccl nvidia-nvtx cuda-bindings cuda-pathfinder)
cpu_lock=$(mktemp)
trap 'rm -f "$cpu_lock"' EXIT
cat "$OUT/runtime-cpu.txt" "$OUT/runtime-cpu-deepspeed.txt" >"$cpu_lock" 2>/dev/null || true
PYTHON_VERSION=3.11 compile "$cpu_lock" pyproject.toml --extra train --extra serve "${cpu_unused[@]/#/--no-emit-package=}"
awk -v ds="$OUT/runtime-cpu-deepspeed.txt" -v rest="$OUT/runtime-cpu.txt" '
  /^[A-Za-z0-9]/ { out = ($0 ~ /^deepspeed==/) ? ds : rest }
  { print > out }' "$cpu_lock"
