# syntax=docker/dockerfile:1
# LMDeploy's own image (its venv /opt/py3 first on PATH) plus modelfleet's engine launcher
# (`modelfleet-serve`).
# The launcher and what it needs (requirements/serving-launcher.txt, the `launcher` extra) live in a
# venv of their own over the image's Python, last on PATH, so the engine's environment stays exactly
# as upstream built it; the launcher starts `lmdeploy serve api_server` and runs
# LMDeploy's own argument parser with the image's `python3`.
# Build from the repository root: docker build -f images/serving-lmdeploy.Dockerfile .
# No registry is reachable where this repository is developed: see images/README.md for what is
# checked here and what only a build with Docker can check.
# The CUDA 12.8 build (its CUDA 13 builds need an R580+ driver, see README).
ARG LMDEPLOY_VERSION=0.18.0

FROM openmmlab/lmdeploy:v${LMDEPLOY_VERSION}-cu12.8 AS build
ARG UV_VERSION=0.13.9
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# uv in a directory of its own (--target steps around PEP 668), left out of the final stage.
RUN python3 -m pip install --no-cache-dir --target /opt/uv "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never
RUN /opt/uv/bin/uv venv --python "$(command -v python3)" /opt/modelfleet
COPY images/requirements/serving-launcher.txt images/requirements/
RUN /opt/uv/bin/uv pip install --python /opt/modelfleet/bin/python --require-hashes --no-deps \
      -r images/requirements/serving-launcher.txt
# The wheel names every package directory of the distribution, so all of them are copied.
COPY pyproject.toml ./
COPY operator operator
COPY training-runtime training-runtime
COPY serving-runtime serving-runtime
RUN /opt/uv/bin/uv pip install --python /opt/modelfleet/bin/python --no-deps .

FROM openmmlab/lmdeploy:v${LMDEPLOY_VERSION}-cu12.8
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="modelfleet-serving-lmdeploy" \
      org.opencontainers.image.description="LMDeploy with modelfleet's engine launcher (modelfleet-serve)" \
      org.opencontainers.image.source="https://github.com/modelfleet/modelfleet" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /opt/modelfleet /opt/modelfleet
# The launcher's venv last on PATH, so `python3` and `lmdeploy` stay the image's own.
ENV PATH=$PATH:/opt/modelfleet/bin PYTHONUNBUFFERED=1 HOME=/home/modelfleet \
    HF_HOME=/home/modelfleet/.cache/huggingface
RUN useradd --uid 65532 --create-home --home-dir /home/modelfleet --shell /usr/sbin/nologin modelfleet
USER 65532:65532
WORKDIR /home/modelfleet
# 8000: the engine's HTTP API; 9090: the launcher's metrics.
EXPOSE 8000 9090
ENTRYPOINT ["modelfleet-serve"]
