# syntax=docker/dockerfile:1
# The serving runtime: the vLLM OpenAI server image plus modelfleet's engine launcher
# (`modelfleet-serve`) and benchmark client (`modelfleet-bench`). vLLM, torch and the CUDA libraries
# come from the base image; images/requirements/serve.txt pins the rest at the versions resolved
# together with this vLLM release (see images/lock.sh).
# Build from the repository root: docker build -f images/serving-runtime.Dockerfile .
ARG VLLM_VERSION=0.32.0

FROM vllm/vllm-openai:v${VLLM_VERSION} AS build
ARG UV_VERSION=0.13.9
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# The launcher and its dependencies go into a directory of their own that the final stage puts first
# on PYTHONPATH: the base image's files stay as they are, and where serve.txt pins another version of
# a package the base also has, ours is imported (both were resolved together with this vLLM release).
# uv goes into a directory of its own (--target also steps around PEP 668), left out of the final stage.
RUN python3 -m pip install --no-cache-dir --target /opt/uv "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1
COPY images/requirements/serve.txt images/requirements/
RUN /opt/uv/bin/uv pip install --python "$(command -v python3)" --require-hashes --no-deps \
      --target /opt/modelfleet/site-packages -r images/requirements/serve.txt
COPY pyproject.toml README.md ./
COPY operator operator
COPY training-runtime training-runtime
COPY serving-runtime serving-runtime
RUN /opt/uv/bin/uv pip install --python "$(command -v python3)" --no-deps \
      --target /opt/modelfleet/site-packages .

FROM vllm/vllm-openai:v${VLLM_VERSION}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="modelfleet-serving-runtime" \
      org.opencontainers.image.description="vLLM (and TGI/SGLang/Triton adapters) launcher and benchmark client for modelfleet" \
      org.opencontainers.image.source="https://github.com/modelfleet/modelfleet" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /opt/modelfleet /opt/modelfleet
# Our packages first on the path; console scripts (modelfleet-serve, modelfleet-bench) from --target.
ENV PYTHONPATH=/opt/modelfleet/site-packages PATH=/opt/modelfleet/site-packages/bin:$PATH \
    PYTHONUNBUFFERED=1 HOME=/home/modelfleet HF_HOME=/home/modelfleet/.cache/huggingface
RUN useradd --uid 65532 --create-home --home-dir /home/modelfleet --shell /usr/sbin/nologin modelfleet
USER 65532:65532
WORKDIR /home/modelfleet
# 8000: the engine's HTTP API; 9090: the launcher's metrics.
EXPOSE 8000 9090
ENTRYPOINT ["modelfleet-serve"]
