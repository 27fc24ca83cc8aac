#!/usr/bin/env bash
# Locks each image's Python dependencies into images/requirements/<extra>.txt (exact versions and
# hashes, for `uv pip install --require-hashes`), resolved from pyproject.toml's extras for the
# images' platform: CPython 3.12 on x86_64 glibc (the CPU runtime image: Debian 12's CPython 3.11). Needs PyPI; rerun after changing an extra.
#   operator.txt          .[operator]
#   train.txt             .[train] with torch held to the last PyPI build on CUDA 12 (see below)
#   train-build.txt       what DeepSpeed's and flash-attn's builds import, at train.txt's versions
#   flash-attn.txt        flash-attn alone (an optional source build in the training image)
#   serve.txt             .[serve] resolved together with the vLLM release the serving image starts
#                         from, minus what that image already ships (torch, vLLM, CUDA wheels)
#   runtime-cpu.txt       .[train,serve] for the CPU runtime image (Debian 12's CPython 3.11), minus
#                         what only a GPU loads (see below) and DeepSpeed
#   runtime-cpu-deepspeed.txt  DeepSpeed alone, built in that image with its CPU ops compiled
set -euo pipefail
cd "$(dirname "$0")/.."

UV="${UV:-$(command -v uv || echo "${MODELFLEET_CACHE:-$HOME/.cache/modelfleet}/venv/bin/uv")}"
OUT=images/requirements
# Keep these in step with the Dockerfiles' ARGs of the same names.
VLLM_VERSION=0.32.0
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

vllm_lock=$(mktemp)
trap 'rm -f "$vllm_lock"' EXIT
# Seeded with the current lock: uv keeps the versions it finds in the output file where they still
# fit, so adding one dependency does not re-resolve (and drift) everything else.
[ ! -f "$OUT/serve.txt" ] || cp "$OUT/serve.txt" "$vllm_lock"
echo "vllm==$VLLM_VERSION" | compile "$vllm_lock" pyproject.toml --extra serve -
# Drop the packages the vllm/vllm-openai image installs itself (its torch may be a local +cuXXX
# build that a PyPI pin would replace) together with their hash lines.
awk '/^[A-Za-z0-9]/ { skip = ($0 ~ /^(torch|torchaudio|torchvision|vllm|triton|xformers|flashinfer-python|nvidia-[a-z0-9-]+)==/) } !skip' \
  "$vllm_lock" >"$OUT/serve.txt"

# The CPU runtime image. PyPI's x86_64 torch is the CUDA build: libtorch links libtorch_cuda, which
# links cuBLAS, cuDNN, cuFFT, cuSPARSE(Lt), NCCL, NVSHMEM, cuFile, CUPTI, NVRTC and the CUDA runtime,
# so without those wheels `import torch` fails ("libcublasLt.so.*[0-9] not found"), even on a CPU.
# Left out is only what nothing loads on a CPU: triton (torch.compile's GPU code generator, 1 GB),
# cuSOLVER (libtorch_cuda_linalg, loaded on the first GPU linear-algebra call), the CCCL headers,
# NVTX and the cuda-python bindings. DeepSpeed gets a file of its own: the image builds it from
# source with its CPU ops compiled, without uv's cache (a cached wheel would lack them).
cpu_unused=(triton nvidia-cusolver nvidia-cuda-cccl nvidia-nvtx cuda-bindings cuda-pathfinder)
cpu_lock=$(mktemp)
trap 'rm -f "$vllm_lock" "$cpu_lock"' EXIT
cat "$OUT/runtime-cpu.txt" "$OUT/runtime-cpu-deepspeed.txt" >"$cpu_lock" 2>/dev/null || true
PYTHON_VERSION=3.11 compile "$cpu_lock" pyproject.toml --extra train --extra serve "${cpu_unused[@]/#/--no-emit-package=}"
awk -v ds="$OUT/runtime-cpu-deepspeed.txt" -v rest="$OUT/runtime-cpu.txt" '
  /^[A-Za-z0-9]/ { out = ($0 ~ /^deepspeed==/) ? ds : rest }
  { print > out }' "$cpu_lock"
