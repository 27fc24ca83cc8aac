# modelfleet: one Makefile for set-up, the local control plane, tests and the demo.
# Everything heavy (Python venv, Go builds) lives in a cache outside the repo, so warm runs skip it.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CACHE ?= $(HOME)/.cache/modelfleet
VENV ?= $(CACHE)/venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
PYTEST := $(PY) -m pytest
export MODELFLEET_CACHE := $(CACHE)
export KUBECONFIG := $(CURDIR)/.cluster/kubeconfig
export TORCH_EXTENSIONS_DIR := $(CACHE)/torch_extensions
export DS_ACCELERATOR := cpu
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Every Python process make starts keeps its compiled bytecode (in __pycache__, ignored by git). This
# machine's environment sets PYTHONDONTWRITEBYTECODE, and uv installs no bytecode, so each process
# compiled torch, transformers, the kubernetes client and each engine's sources again: a two-rank
# torchrun of two steps took 47 CPU seconds without bytecode and 20 with it, vLLM's argument parser
# 14 and 6.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# ---- Python environments: one venv, extras installed in the order tests need them -------------
# Each extra is installed with images/requirements/dev.txt as constraints (exact versions and hashes,
# written by images/lock.sh): a fresh machine gets the versions CI tested, not PyPI's newest of the day.
UV_VERSION := 0.13.9
DEV_LOCK := images/requirements/dev.txt
$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q uv==$(UV_VERSION)

$(VENV)/.stamp-%: pyproject.toml $(DEV_LOCK) | $(PY)
	$(UV) pip install --python $(PY) -q -c $(DEV_LOCK) -e '.[$*]'
	touch $@

.PHONY: deps-operator deps-train deps-serve deps-dev
deps-dev: $(VENV)/.stamp-dev
deps-operator: $(VENV)/.stamp-operator deps-dev
deps-train: $(VENV)/.stamp-train deps-dev
deps-serve: $(VENV)/.stamp-serve deps-dev

# The venv lives outside the repo so a fresh clone reuses it; its editable install must point at
# this checkout, wherever it is.
.PHONY: link
link: | $(PY)
	@$(UV) pip install --python $(PY) -q --no-deps -e .

# ---- Local control plane ------------------------------------------------------------------------
.PHONY: cluster-build cluster-up cluster-down
cluster-build: ## build the control plane, kwok and the real node's components (cached)
	bash hack/controlplane/build.sh
	bash hack/node/build.sh

.PHONY: node-packages
node-packages: ## install the real node's Debian packages (runc, nftables, gcc, busybox) when missing
	bash hack/node/build.sh --debian-packages

cluster-up: cluster-build deps-operator link ## start the local control plane: a real node, fake AKS GPU pools
	$(PY) -m hack.controlplane up

cluster-down: deps-operator link ## stop every control-plane process
	$(PY) -m hack.controlplane down

.PHONY: chart-tools terraform-azurerm
chart-tools: ## build helm and the Terraform helm provider from their Go modules (cached)
	bash hack/controlplane/build-helm.sh
	bash hack/controlplane/build-terraform-providers.sh helm

# Kueue (the cluster tier's), then Prometheus, KEDA and the KEDA HTTP add-on (the real node's tests), each
# from its Go module into $(CACHE)/<component>-<version>/bin; versions in hack/thirdparty/versions.env.
THIRDPARTY := kueue prometheus keda http-add-on
.PHONY: thirdparty-build $(addprefix thirdparty-,$(THIRDPARTY))
thirdparty-build: ## build Kueue, Prometheus, KEDA and its HTTP add-on from their Go modules (cached)
	bash hack/thirdparty/build.sh $(THIRDPARTY)
$(addprefix thirdparty-,$(THIRDPARTY)): thirdparty-%:
	bash hack/thirdparty/build.sh $*

# Not part of `make test`: the azurerm provider's Go build takes over 20 minutes on two cores. With it
# in the mirror, the Terraform tests also validate the whole AKS example.
terraform-azurerm: ## build the Terraform azurerm provider into the local mirror (slow)
	bash hack/controlplane/build-terraform-providers.sh azurerm

# ---- The CPU runtime image ----------------------------------------------------------------------
# images/runtime-cpu.Dockerfile built with buildah on a Debian base that mmdebstrap makes (no Docker
# engine, no registry), saved as a docker archive in $(CACHE)/image/ under the hash of its inputs:
# rebuilt only when the Dockerfile, its locks or the project's sources change (hack/image).
.PHONY: image-tools image-cpu
image-tools: ## install buildah and mmdebstrap (Debian packages) when missing
	@command -v buildah >/dev/null && command -v mmdebstrap >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends buildah mmdebstrap; }

# MODELFLEET_RUNTIME_IMAGE_TAG=<tag> names an archive already built (hack/node/images.py): nothing is built.
image-cpu: image-tools deps-dev link ## build the CPU runtime image (cached by its inputs' hash)
	$(if $(MODELFLEET_RUNTIME_IMAGE_TAG),@echo "MODELFLEET_RUNTIME_IMAGE_TAG=$(MODELFLEET_RUNTIME_IMAGE_TAG): the archive built for that tag is used as is",$(PY) -m hack.image build)

# ---- Code generation and checks -----------------------------------------------------------------
.PHONY: crds lint
crds: deps-dev link ## regenerate crds/ and the chart's copy from the API types
	$(PY) -m modelfleet_api.crdgen crds charts/modelfleet/crds

# mypy's cache lives in the cache, one per checkout (its entries name their files): a fresh clone at
# the same place (CI's) checks in 3 s instead of 25.
MYPY_CACHE = $(CACHE)/mypy/$(subst /,_,$(CURDIR))
lint: deps link ## ruff, mypy on the operator, API, runtime, hack and benchmarks packages, import layers
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy --cache-dir $(MYPY_CACHE)
	$(VENV)/bin/lint-imports

# ---- Tests --------------------------------------------------------------------------------------
# `make test` runs every tier (see below); each tier also runs alone. pytest exits non-zero (5) when a
# selection collects nothing, and make stops on it.
TIERS := unit cluster runtime chart e2e
.PHONY: deps test $(addprefix test-,$(TIERS))
deps: deps-operator deps-train deps-serve deps-dev link
# Four pytest sessions run side by side: the CPU-bound unit tier and the runtime tier's training files
# in the foreground; the runtime tier's serving and benchmark files (engines, HTTP servers and their
# clients: much of it waiting) with the chart tier (no control plane: templates, the image, the lock
# file) and the cluster tier's operator scale benchmark test (OWN_PLANE), which ends minutes before the
# others; the rest of the cluster tier (mostly waiting on the API server: the longest session); and
# the e2e tier (pods on the real node of a control plane of its own, mostly waiting on them).
# The background sessions' reports follow the foreground's. Tests marked `timing` check latencies to
# the millisecond, which two busy cores cannot promise, so they run afterwards alone; a timing test
# whose measurement window a stray stall of this shared machine hit is measured again (at most twice
# more), with its tolerance unchanged: a real error fails every attempt.
ALL_TIERS = $(subst $(space),$(space)or$(space),$(TIERS))
# Set-up runs in two lanes side by side: the Go builds (compilers on every core, niced) and the Python
# side (wheels, the runtime image, the engines' venvs, Azurite: mostly downloads and disk), so on a
# fresh machine the downloads happen while the compilers run. Nothing is shared between the lanes:
# the Debian packages both would install come first. The Go lane's output goes to its log and is
# printed when both lanes are done; a warm run builds nothing in either.
GO_SETUP := cluster-build thirdparty-kueue thirdparty-prometheus thirdparty-keda thirdparty-http-add-on chart-tools
PY_SETUP := deps lint image-cpu test-tools
SETUP_LOG := .cluster/setup-go-lane.log
.PHONY: setup test-tools
setup: image-tools node-packages ## set up everything make test needs (two lanes: Go builds, Python side)
	@mkdir -p .cluster
	@$(MAKE) --no-print-directory $(GO_SETUP) > $(SETUP_LOG) 2>&1 & go=$$!; \
	$(MAKE) --no-print-directory $(PY_SETUP) && py=0 || py=$$?; \
	wait $$go && go_rc=0 || go_rc=$$?; \
	echo "==== set-up, Go lane (log: $(SETUP_LOG)) ===="; cat $(SETUP_LOG); \
	test $$py -eq 0 -a $$go_rc -eq 0
test-tools: deps link ## fetch what the runtime tier makes on first use (engine venvs, Azurite; cached)
	$(PY) -m tests.runtime.prepare
CLUSTER_LOG := .cluster/test-cluster-tier.log
E2E_LOG := .cluster/test-e2e-tier.log
SERVING_LOG := .cluster/test-runtime-serving.log
RUNTIME_SERVING := $(wildcard tests/runtime/test_serve_*.py tests/runtime/test_bench_*.py)
# The operator scale benchmark's test starts a control plane and operators of its own (52 s alone,
# 62-84 s beside the other sessions): it runs in the serving session, which ends minutes before the
# cluster session, the longest of make test.
OWN_PLANE := tests/cluster/test_operator_scale_benchmark.py
# each session ends with its slowest steps (setup, call, teardown), then its wall time and CPU (its own
# and that of the processes it started and reaped: control planes, torchrun, engines): a run's log shows
# where its time went
DURATIONS := --durations=15 --durations-min=10
timed = { TIMEFORMAT="==== $(1): %R s wall, %U s user + %S s sys CPU"; time $(2); }
test: setup ## set up everything and run every test tier
	@mkdir -p .cluster
	@$(call timed,cluster tier,$(PYTEST) $(DURATIONS) -m "cluster and not timing" --ignore=$(OWN_PLANE)) > $(CLUSTER_LOG) 2>&1 & cluster=$$!; \
	$(call timed,e2e tier,$(PYTEST) $(DURATIONS) -m "e2e and not timing") > $(E2E_LOG) 2>&1 & e2e=$$!; \
	$(call timed,runtime tier's serving and benchmark files and chart tier and scale benchmark test,$(PYTEST) $(DURATIONS) -m "(runtime or chart or cluster) and not timing" $(RUNTIME_SERVING) tests/chart $(OWN_PLANE)) > $(SERVING_LOG) 2>&1 & serving=$$!; \
	$(call timed,unit tier and runtime tier: training files,$(PYTEST) $(DURATIONS) -m "(unit or runtime) and not timing" $(addprefix --ignore=,$(RUNTIME_SERVING))) && rest=0 || rest=$$?; \
	wait $$serving && serving_rc=0 || serving_rc=$$?; \
	wait $$cluster && cluster_rc=0 || cluster_rc=$$?; \
	wait $$e2e && e2e_rc=0 || e2e_rc=$$?; \
	echo "==== runtime tier's serving and benchmark files and chart tier and scale benchmark test (log: $(SERVING_LOG)) ===="; cat $(SERVING_LOG); \
	echo "==== cluster tier (log: $(CLUSTER_LOG)) ===="; cat $(CLUSTER_LOG); \
	echo "==== e2e tier (log: $(E2E_LOG)) ===="; cat $(E2E_LOG); \
	test $$rest -eq 0 -a $$serving_rc -eq 0 -a $$cluster_rc -eq 0 -a $$e2e_rc -eq 0
	@$(call timed,timing tests,$(PYTEST) -m "($(ALL_TIERS)) and timing" --reruns 2)
test-unit: deps
	$(PYTEST) -m unit
test-cluster: thirdparty-kueue
test-cluster test-runtime: test-%: deps cluster-build
	$(PYTEST) -m $*
test-e2e: deps cluster-build thirdparty-prometheus thirdparty-keda thirdparty-http-add-on image-cpu
	$(PYTEST) -m e2e
test-chart: deps chart-tools image-cpu
	$(PYTEST) -m $*

space := $(subst ,, )

# ---- Benchmarks (not part of `make test`) --------------------------------------------------------
# The operator scale benchmark starts a fresh control plane of its own for every measurement (ports
# MODELFLEET_PORT_BASE+100 to +191, under .cluster/bench) and takes 30-60 min on two cores: BENCH_ARGS=--quick
# runs small sizes on one shared plane, BENCH_ARGS="--phases burst --burst-sizes 300" one part (see
# docs/operations.md, "Sizing the operator").
BENCH_OUT ?= .cluster/operator-scale.json
BENCH_ARGS ?=
.PHONY: bench-operator-scale
bench-operator-scale: deps cluster-build ## operator scale benchmark: bursts vs a plain client, steady, idle
	$(PY) -m benchmarks.operator_scale --out $(BENCH_OUT) $(BENCH_ARGS)

# ---- Demo ---------------------------------------------------------------------------------------
.PHONY: demo
demo: deps cluster-build image-cpu ## start the control plane, its real node and the operator; run the examples
	$(PY) -m hack.demo
