# syntax=docker/dockerfile:1
# The CPU runtime: one image for everything a CPU node runs, on Debian 12's CPython 3.11:
# TrainingJob workers (`torchrun -m modelfleet_train`, DDP/FSDP/DeepSpeed on gloo), the
# `transformers serve` engine behind `modelfleet-serve`, and `modelfleet-bench` point Jobs. Every pod
# the operator makes sets its own command, so the image has no entry point. The GPU images are
# training-runtime and serving-runtime.
# Build from the repository root: docker build -f images/runtime-cpu.Dockerfile .
# `make image-cpu` builds it here without Docker: buildah, on a Debian base that mmdebstrap makes
# (hack/image), passed in as DEBIAN_IMAGE.
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
ARG UV_VERSION=0.13.9
# A CA bundle for TLS to PyPI, for a build behind a TLS-inspecting proxy (`make image-cpu` mounts the
# host's and names it here); unset, pip and uv trust their own roots.
ARG PIP_CERT
ARG SSL_CERT_FILE
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# python3-dev and g++: DeepSpeed's CPU ops are compiled below, against the installed torch.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev g++ ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# uv lives in its own venv so it stays out of the final image.
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
# uv's cache is a directory of this stage, which the final stage leaves behind; `make image-cpu`
# mounts the host's uv cache there, so the wheels `make deps` fetched are not downloaded again.
ENV PATH=/opt/uv/bin:$PATH UV_CACHE_DIR=/cache/uv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    VIRTUAL_ENV=/opt/venv DS_ACCELERATOR=cpu
RUN uv venv /opt/venv --python /usr/bin/python3
WORKDIR /src
# Dependencies first, from the locks alone, so code edits reuse these layers. runtime-cpu.txt leaves
# out what only a GPU loads (triton, cuSOLVER, ...; see images/lock.sh).
COPY images/requirements/runtime-cpu.txt images/requirements/runtime-cpu-deepspeed.txt images/requirements/
RUN uv pip install --require-hashes --no-deps -r images/requirements/runtime-cpu.txt
# DeepSpeed from source with its CPU ops compiled in (the shared-memory allreduce every CPU run
# loads, and the CPU Adam of optimizer offload), so pods never JIT-compile them and the final stage
# needs no compiler. --no-cache: a wheel cached without the ops must not be reused.
RUN DS_BUILD_OPS=0 DS_BUILD_SHM_COMM=1 DS_BUILD_CPU_ADAM=1 \
    uv pip install --no-cache --require-hashes --no-deps --no-build-isolation \
      -r images/requirements/runtime-cpu-deepspeed.txt \
    && /opt/venv/bin/ds_report
COPY pyproject.toml ./
# Of operator/ only the API types the runtimes share with the operator: the image (and its inputs'
# hash, hack/image/inputs.py) does not change when only the operator does, so a commit to it does not
# rebuild and re-export this 5 GiB image (about 2 min). hatch leaves out the listed package that is not
# there; the operator has an image of its own (operator.Dockerfile).
COPY operator/modelfleet_api operator/modelfleet_api
COPY training-runtime training-runtime
COPY serving-runtime serving-runtime
# The project goes into a directory of its own (first on PYTHONPATH in the final stage), so a code
# edit makes a small layer and the dependencies' layer stays as it was.
RUN uv pip install --no-deps --target /opt/modelfleet .

FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 65532 --create-home --home-dir /home/modelfleet --shell /usr/sbin/nologin modelfleet
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/modelfleet /opt/modelfleet
ENV PATH=/opt/modelfleet/bin:/opt/venv/bin:$PATH PYTHONPATH=/opt/modelfleet PYTHONUNBUFFERED=1 \
    HOME=/home/modelfleet HF_HOME=/home/modelfleet/.cache/huggingface DS_ACCELERATOR=cpu
USER 65532:65532
WORKDIR /home/modelfleet
# 29500: torch.distributed rendezvous on rank 0; 8000: the engine's HTTP API; 9090: metrics.
EXPOSE 29500 8000 9090
# Labels last: their version, revision and time change every build and would void the layers after them.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="modelfleet-runtime-cpu" \
      org.opencontainers.image.description="CPU runtime for modelfleet: training workers, the transformers serve engine and the benchmark client" \
      org.opencontainers.image.source="https://github.com/modelfleet/modelfleet" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
