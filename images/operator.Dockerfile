# syntax=docker/dockerfile:1
# The modelfleet operator: `python -m modelfleet_operator` (kopf) with the locked `.[operator]` extra.
# Build from the repository root: docker build -f images/operator.Dockerfile .
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1 VIRTUAL_ENV=/opt/venv
RUN uv venv /opt/venv --python /usr/local/bin/python3
WORKDIR /src
# Dependencies first, from the lock alone, so code edits reuse this layer.
COPY images/requirements/operator.txt images/requirements/
RUN uv pip install --require-hashes --no-deps -r images/requirements/operator.txt
# The wheel names every package directory of the distribution, so all of them are copied.
COPY pyproject.toml ./
COPY operator operator
COPY training-runtime training-runtime
COPY serving-runtime serving-runtime
RUN uv pip install --no-deps .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="modelfleet-operator" \
      org.opencontainers.image.description="Kubernetes operator that trains, serves and benchmarks LLMs on AKS H100 pools" \
      org.opencontainers.image.source="https://github.com/modelfleet/modelfleet" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# A numeric user, so `runAsNonRoot` can verify it without a passwd lookup.
USER 65532:65532
# 8080: kopf's /healthz; 9090: Prometheus metrics.
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "modelfleet_operator"]
