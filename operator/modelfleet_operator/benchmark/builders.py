"""Pure builders of a BenchmarkSweep's children: (owner, point, observed target) -> manifest dicts.

No API calls, no clock: a test compares each whole manifest with what a user gets. The children are
the ModelDeployments expanded from templates, and per point a ConfigMap with the point's
``BenchmarkRuntimeConfig`` and the Job running ``modelfleet-bench run`` on it; plus the results
ConfigMap (``sinks.configMap``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from modelfleet_api import API_VERSION, contract, first_process
from modelfleet_api import constants as c
from modelfleet_api.benchmark import (
    OPENAI_PROTOCOLS,
    BenchmarkRuntimeConfig,
    LengthDistribution,
    Protocol,
    Sinks,
    Slos,
    Workload,
)
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec, PlotLink, PointStatus
from modelfleet_api.common import SecretKeyRef
from modelfleet_api.constants import PointPhase
from modelfleet_api.pods import BenchmarkPodTemplate
from modelfleet_api.serving import EngineType
from modelfleet_api.storage import StorageUri, UriKind, kind_of
from modelfleet_api.sweep_template import ClientResources
from modelfleet_api.sweepplot import PANELS, PlotPoint, render_html

from modelfleet_operator.benchmark.grid import Point, Target
from modelfleet_operator.benchmark.names import ChildNames
from modelfleet_operator.common.identity import NO_IDENTITY, RuntimeIdentity
from modelfleet_operator.common.owner import Owner as OwnerBase
from modelfleet_operator.common.owner import labels
from modelfleet_operator.common.owner import metadata as _metadata
from modelfleet_operator.common.pod_overlay import merge_pod
from modelfleet_operator.common.volumes import pvc_claims, pvc_volumes

Manifest = dict[str, Any]

BENCH_CONTAINER = "bench"
CONFIG_VOLUME = "config"
RESULTS_VOLUME = "results"
MODEL_VOLUME_PREFIX = "model-pvc"
"""Volumes of the claims a point pod reads (the model's tokenizer, the quality section's files):
``model-pvc-N``, the operator's claim volumes in every pod."""
RESULTS_DIR = contract.BENCH_RESULTS_DIR
RESULTS_KEY = "results.json"
"""Key of the results ConfigMap holding every point's status as a JSON list."""
PLOT_KEY = "sweep.html"
"""Key of the results ConfigMap holding the sweep's plot (``modelfleet_api.sweepplot``)."""
API_KEY_ENV = "MODELFLEET_BENCH_API_KEY"
"""Variable the Job's API key (from the deployment's ``apiKeySecret``) is passed in."""
RUNTIME_USER = 65532
"""The serving-runtime image's numeric user (images/serving-runtime.Dockerfile)."""
TERMINATION_LOG = "/dev/termination-log"
"""Where ``modelfleet-bench run`` writes the point's ``PointMetrics`` (the Kubernetes default path,
named here so the contract is visible in the manifest)."""
API_PATHS = ("/v1", "/v2")
"""Suffixes a ModelDeployment's ``status.endpoint`` carries; the benchmark client appends its own."""


@dataclass(frozen=True, kw_only=True)
class Owner(OwnerBase):
    """The BenchmarkSweep the children belong to."""

    KIND: ClassVar[str] = "BenchmarkSweep"
    OWNER_LABEL: ClassVar[str] = c.LABEL_BENCHMARK_SWEEP

    @property
    def names(self) -> ChildNames:
        return ChildNames(self.name, self.namespace)


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """What the sweep read from a Ready ModelDeployment to point the benchmark client at it."""

    url: str
    """Where the point pods send: ``status.endpoint`` (the Service), or ``status.interceptor.url``."""
    served_model: str
    engine: EngineType
    tokenizer: str
    """The deployment's model URI (the tokenizer unless the sweep names one)."""
    api_key_secret: SecretKeyRef | None = None
    host: str | None = None
    """``Host`` header for the interceptor (``status.interceptor.host``); None: straight to the Service."""
    service_url: str | None = None
    """``status.endpoint`` when ``url`` is the interceptor's: the engine's counters are read there, not
    through the interceptor (a replica runs by then, woken by the warm-up or first requests)."""


def model_deployment(owner: Owner, target: Target) -> Manifest:
    """A ModelDeployment expanded from a template target; the sweep deletes it when its points ended."""
    if target.template is None:
        raise ValueError(f"target {target.name} references {target.deployment}; the sweep does not own it")
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "metadata": _metadata(
            owner, target.deployment, c.COMPONENT_SERVER, {c.LABEL_SWEEP_TARGET: target.deployment}
        ),
        "spec": target.template.to_wire(),
    }


def target_url(endpoint: str) -> str:
    """The server's base URL: ``status.endpoint`` without the API path the client adds itself."""
    base = endpoint.rstrip("/")
    for path in API_PATHS:
        if base.endswith(path):
            return base.removesuffix(path)
    return base


def protocol(spec: BenchmarkSweepSpec, engine: EngineType) -> Protocol:
    if spec.protocol is not None:
        return spec.protocol
    return Protocol.KSERVE_V2_HTTP if engine is EngineType.TRITON_TRTLLM else Protocol.OPENAI_CHAT


def engine_metrics_url(spec: BenchmarkSweepSpec, endpoint: Endpoint) -> str | None:
    """Where the client reads the engine's counters when it sends through the interceptor: ``/metrics``
    on the Service (OpenAI-compatible engines serve it on the API port; Triton's are on another port,
    which the client reads only when told). None: the client's default, beside ``targetUrl``."""
    if endpoint.service_url is None or protocol(spec, endpoint.engine) not in OPENAI_PROTOCOLS:
        return None
    return f"{target_url(endpoint.service_url)}/metrics"


def workload(spec: BenchmarkSweepSpec, point: Point) -> Workload:
    """The sweep's workload, with the point's constant token lengths when ``tokenLengths`` is set."""
    if point.lengths is None or spec.workload.synthetic is None:
        return spec.workload
    synthetic = spec.workload.synthetic.model_copy(
        update={
            "input_tokens": LengthDistribution(mean=point.lengths.input_tokens),
            "output_tokens": LengthDistribution(mean=point.lengths.output_tokens),
        }
    )
    return spec.workload.model_copy(update={"synthetic": synthetic})


def results_folder_uri(owner: Owner, spec: BenchmarkSweepSpec) -> str | None:
    """The sweep's folder of result files: ``<sinks.blobUri>/<namespace>/<sweep>`` (None without
    ``sinks.blobUri``)."""
    if spec.sinks.blob_uri is None:
        return None
    return f"{spec.sinks.blob_uri.rstrip('/')}/{owner.names.results_folder}"


def results_uri(owner: Owner, spec: BenchmarkSweepSpec, point: Point) -> str | None:
    """The blob prefix of the point's result files: ``<results folder>/point-<index>``."""
    folder = results_folder_uri(owner, spec)
    return None if folder is None else f"{folder}/point-{point.index}"


def model_tokenizer(model_uri: str) -> str | None:
    """Where a point pod reads the served model's tokenizer: a hub id or a path in the pod as is, a
    ``pvc://`` model where its claim is mounted (``read_claims``); None for blob storage, which the
    pod does not download from (a synthetic workload then needs the sweep's ``tokenizer``, and the
    point's pod says so)."""
    kind = kind_of(model_uri)
    if kind in (UriKind.PVC, UriKind.LOCAL):
        return str(StorageUri(model_uri, kind).local_path())
    return model_uri if kind is UriKind.HUB else None


def read_claims(spec: BenchmarkSweepSpec, endpoint: Endpoint) -> dict[str, bool]:
    """The claims a point pod mounts (read-only): a ``pvc://`` model's, to read its tokenizer (unless the
    sweep names its own), and those of the quality section's ``pvc://`` files."""
    tokenizer = [] if spec.tokenizer else [endpoint.tokenizer]
    quality = spec.quality.files() if spec.quality is not None else []
    return pvc_claims([*tokenizer, *quality])


def runtime_config(
    owner: Owner, spec: BenchmarkSweepSpec, point: Point, endpoint: Endpoint
) -> BenchmarkRuntimeConfig:
    """What ``modelfleet-bench run`` reads for one point."""
    return BenchmarkRuntimeConfig(
        target_url=target_url(endpoint.url),
        target_host=endpoint.host,
        target_name=point.target.deployment,
        model=endpoint.served_model,
        protocol=protocol(spec, endpoint.engine),
        workload=workload(spec, point),
        load=point.load,
        slos=spec.slos,
        tokenizer=spec.tokenizer or model_tokenizer(endpoint.tokenizer),
        api_key_env=API_KEY_ENV if endpoint.api_key_secret is not None else None,
        output_dir=RESULTS_DIR,
        engine_metrics_url=engine_metrics_url(spec, endpoint),
        quality=spec.quality,
        sinks=Sinks(
            pushgateway=spec.sinks.pushgateway,
            mlflow=spec.sinks.mlflow,
            blob_uri=results_uri(owner, spec, point),
        ),
    )


def _point_labels(point: Point) -> dict[str, str]:
    return {c.LABEL_SWEEP_POINT: str(point.index), c.LABEL_SWEEP_TARGET: point.target.deployment}


def point_config_map(owner: Owner, point: Point, config: BenchmarkRuntimeConfig) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(
            owner, owner.names.point_config_map(point.index), c.COMPONENT_CONFIG, _point_labels(point)
        ),
        "data": {contract.CONFIG_FILE: config.to_yaml()},
    }


def client_resources(asked: ClientResources) -> dict[str, Any]:
    """The benchmark container's resources: memory limited to its request, CPU not limited."""
    return {"requests": {"cpu": asked.cpu, "memory": asked.memory}, "limits": {"memory": asked.memory}}


def point_job(
    owner: Owner,
    point: Point,
    *,
    image: str,
    api_key_secret: SecretKeyRef | None,
    identity: RuntimeIdentity = NO_IDENTITY,
    pod_template: BenchmarkPodTemplate | None = None,
    claims: dict[str, bool] | None = None,
    resources: ClientResources | None = None,
) -> Manifest:
    """One load point (``pod_template``: the sweep's additions to its pod; ``claims``: the claims it
    mounts, ``read_claims``; ``resources``: the sweep's ``clientResources``). ``backoffLimit: 0``:
    a rerun would measure a different moment of the server, so a failed point is recorded as failed
    rather than retried."""
    claim_volumes, claim_mounts = pvc_volumes(claims or {}, MODEL_VOLUME_PREFIX)
    env: list[dict[str, Any]] = [
        {"name": contract.ENV_BENCH_CONFIG, "value": f"{contract.CONFIG_DIR}/{contract.CONFIG_FILE}"}
    ]
    if api_key_secret is not None:
        env.append(
            {
                "name": API_KEY_ENV,
                "valueFrom": {"secretKeyRef": {"name": api_key_secret.name, "key": api_key_secret.key}},
            }
        )
    env += identity.env()
    point_labels = labels(owner, c.COMPONENT_BENCHMARK) | _point_labels(point) | identity.pod_labels()
    container = {
        "name": BENCH_CONTAINER,
        "image": image,
        "command": ["modelfleet-bench", "run"],
        "env": env,
        "resources": client_resources(resources or ClientResources()),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": contract.CONFIG_DIR, "readOnly": True},
            {"name": RESULTS_VOLUME, "mountPath": RESULTS_DIR},
            *claim_mounts,
        ],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(
            owner, owner.names.point_job(point.index), c.COMPONENT_BENCHMARK, _point_labels(point)
        ),
        "spec": {
            "backoffLimit": 0,
            "template": merge_pod(
                {
                    "metadata": {"labels": point_labels},
                    "spec": {
                        **identity.pod_spec(),
                        **first_process.POD_SPEC,
                        "restartPolicy": "Never",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": RUNTIME_USER,
                            "runAsGroup": RUNTIME_USER,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                        "volumes": [
                            {
                                "name": CONFIG_VOLUME,
                                "configMap": {"name": owner.names.point_config_map(point.index)},
                            },
                            {"name": RESULTS_VOLUME, "emptyDir": {}},
                            *claim_volumes,
                        ],
                    },
                },
                pod_template,
            ),
        },
    }


def plot_points(points: list[PointStatus]) -> list[PlotPoint]:
    """The measured points as the sweep plot draws them (a point without its numeric level, as
    recorded before sweeps kept it, is placed by its index: a target's points are in load order)."""
    return [
        PlotPoint(
            target=p.target,
            load=p.load,
            level=float(p.concurrency or p.request_rate or p.index),
            throughput=p.output_tokens_per_second or 0.0,
            latency={metric: getattr(p, metric) for metric, _ in PANELS},
            held_load=p.held_load,
        )
        for p in points
        if p.phase is PointPhase.SUCCEEDED and p.output_tokens_per_second is not None
    ]


def results_config_map(owner: Owner, points: list[PointStatus], slos: Slos | None = None) -> Manifest:
    """Every point's status (description, key figures, failure reason) as one JSON document, and the
    sweep's plot (``PLOT_KEY``) with the SLO thresholds drawn."""
    document = [p.to_wire() for p in points]
    plot = render_html(plot_points(points), slos or Slos(), f"BenchmarkSweep {owner.namespace}/{owner.name}")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, owner.names.results_config_map, c.COMPONENT_BENCHMARK, {}),
        "data": {RESULTS_KEY: json.dumps(document, indent=2) + "\n", PLOT_KEY: plot},
    }


def plot_link(owner: Owner) -> PlotLink:
    """Where status says the plot is (``status.plot``): the results ConfigMap's ``PLOT_KEY``."""
    return PlotLink(config_map=owner.names.results_config_map, key=PLOT_KEY)
