# syntax=docker/dockerfile:1
# The training runtime: `torchrun -m modelfleet_train` with torch, DeepSpeed (ops prebuilt for H100)
# and, by default, flash-attention, on CUDA 12. The operator sets torchrun's flags through PET_*
# variables (modelfleet_api.contract), so the command never changes.
# Build from the repository root: docker build -f images/training-runtime.Dockerfile .
ARG CUDA_VERSION=12.8.1
ARG UBUNTU_VERSION=24.04

FROM nvidia/cuda:${CUDA_VERSION}-cudnn-devel-ubuntu${UBUNTU_VERSION} AS build
ARG UV_VERSION=0.13.9
# 9.0 = Hopper (H100); add e.g. "8.0" to also run on A100.
ARG TORCH_CUDA_ARCH_LIST=9.0
# nvcc jobs in parallel; each flash-attn job can take several GiB of memory.
ARG MAX_JOBS=8
# 1: build flash-attn (uses a prebuilt wheel when one matches, else compiles for a long time).
ARG FLASH_ATTN=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# libaio-dev: DeepSpeed's async_io op (ZeRO-Infinity NVMe offload); git: flash-attn's setup.py.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 python3.12-dev python3.12-venv libaio-dev git \
    && rm -rf /var/lib/apt/lists/*
# uv lives in its own venv so it stays out of the final image.
RUN python3.12 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
ENV PATH=/opt/uv/bin:$PATH UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1 VIRTUAL_ENV=/opt/venv \
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST} MAX_JOBS=${MAX_JOBS}
RUN uv venv /opt/venv --python /usr/bin/python3.12
WORKDIR /src
COPY images/requirements/train.txt images/requirements/train-build.txt images/requirements/flash-attn.txt \
     images/requirements/
# torch and the build tools first: DeepSpeed and flash-attn compile against the installed torch.
RUN uv pip install --require-hashes --no-deps -r images/requirements/train-build.txt
# DS_BUILD_OPS=1 compiles DeepSpeed's CUDA/C++ ops now, so pods never JIT-compile them at start-up.
# Off: ops that need libraries or hardware this image does not target (sparse attention needs
# triton 1.x, evoformer/cutlass need CUTLASS sources, GDS needs cuFile, ragged ops are inference-only).
RUN DS_BUILD_OPS=1 DS_BUILD_SPARSE_ATTN=0 DS_BUILD_EVOFORMER_ATTN=0 DS_BUILD_CUTLASS_OPS=0 \
    DS_BUILD_RAGGED_DEVICE_OPS=0 DS_BUILD_GDS=0 DS_BUILD_FP_QUANTIZER=0 \
    uv pip install --require-hashes --no-deps --no-build-isolation-package deepspeed \
      -r images/requirements/train.txt \
    && /opt/venv/bin/ds_report
RUN if [ "${FLASH_ATTN}" = "1" ]; then \
      uv pip install --require-hashes --no-deps --no-build-isolation -r images/requirements/flash-attn.txt; \
    fi
COPY pyproject.toml ./
COPY operator operator
COPY training-runtime training-runtime
COPY serving-runtime serving-runtime
RUN uv pip install --no-deps .

FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu${UBUNTU_VERSION}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="modelfleet-training-runtime" \
      org.opencontainers.image.description="torchrun + DeepSpeed/FSDP/DDP fine-tuning runtime for modelfleet TrainingJobs" \
      org.opencontainers.image.source="https://github.com/modelfleet/modelfleet" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
# python3.12-dev and gcc: triton (torch.compile) builds a small C launcher at run time;
# libaio1t64: DeepSpeed's prebuilt async_io op links against it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 python3.12-dev gcc libc6-dev libaio1t64 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 65532 --create-home --home-dir /home/modelfleet --shell /usr/sbin/nologin modelfleet
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/home/modelfleet \
    HF_HOME=/home/modelfleet/.cache/huggingface TRITON_CACHE_DIR=/home/modelfleet/.cache/triton
USER 65532:65532
WORKDIR /home/modelfleet
# 29500: torch.distributed rendezvous on rank 0; 9090: rank 0's Prometheus metrics.
EXPOSE 29500 9090
ENTRYPOINT ["torchrun", "-m", "modelfleet_train"]
