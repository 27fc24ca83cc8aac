"""Pure builders of a ModelDeployment's children: (owner, spec, settings, observations) -> manifest dicts.

No API calls, no clock: a test compares each whole manifest with the one a user gets, and the
reconcile can apply them in any order, any number of times (server-side apply; a child that no longer
matches its manifest is applied again).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from modelfleet_api import constants as c
from modelfleet_api import contract, first_process
from modelfleet_api import instance_types as it
from modelfleet_api.common import env_list
from modelfleet_api.engines.metrics import METRICS_PATH, AutoscalingMetric, scrape_port
from modelfleet_api.modeldeployment import AutoscalingSpec, DeploymentModelSource, ModelDeploymentSpec
from modelfleet_api.serving import EngineSpec, EngineType, ServingRuntimeConfig
from modelfleet_api.storage import UriKind, kind_of
from modelfleet_api.training import ModelSource

from modelfleet_operator.common import placement
from modelfleet_operator.common.identity import NO_IDENTITY, RuntimeIdentity
from modelfleet_operator.common.owner import Owner as OwnerBase
from modelfleet_operator.common.owner import labels as common_labels
from modelfleet_operator.common.owner import metadata
from modelfleet_operator.common.pod_overlay import merge_pod
from modelfleet_operator.common.volumes import pvc_claims, pvc_volumes
from modelfleet_operator.config import DEFAULT_KEDA_HTTP_NAMESPACE
from modelfleet_operator.serving.names import ChildNames
from modelfleet_operator.serving.policies.custom_metrics import NOT_FOUND, CustomMetricsApi
from modelfleet_operator.serving.policies.lineage import TrackModel, base_served_name, plain
from modelfleet_operator.serving.policies.metrics import EngineMetric

Manifest = dict[str, Any]

SERVER_CONTAINER = "server"
DOWNLOAD_CONTAINER = "model-download"
CONFIG_VOLUME = "config"
CACHE_VOLUME = "model-cache"
SHM_VOLUME = "dshm"
MODEL_PVC_VOLUME = "model-pvc"
CONFIG_HASH_ANNOTATION = "modelfleet.io/config-hash"
"""On the pod template: a changed runtime config rolls the pods even though the ConfigMap keeps its name."""
API_KEY_ENV = "MODELFLEET_API_KEY"
"""Environment variable the API key Secret is mapped to; the runtime config names it (``apiKeyEnv``)."""
RUNTIME_USER = 65532
"""The serving image's numeric user; ``fsGroup`` makes a PVC cache writable for it."""

STARTUP_PROBE_PERIOD_SECONDS = 10
STARTUP_PROBE_FAILURES = 360
"""10 s x 360 = one hour for the engine to load the weights (a 70B model on slow disks takes tens
of minutes) before liveness takes over; the download itself runs in the init container, unprobed."""
TERMINATION_GRACE_SECONDS = 120
"""Engines finish in-flight requests on SIGTERM; long generations need time."""
PROGRESS_DEADLINE_SECONDS = 3600
KEDA_POLLING_SECONDS = 15
SKIP_SCALED_OBJECT_ANNOTATION = "httpscaledobject.keda.sh/skip-scaledobject-creation"
"""The add-on makes no ScaledObject of its own: the operator's carries the add-on's trigger beside the
engine's metric (the add-on's walkthrough, "Integrating HTTP Add-On Scaler with other KEDA scalers")."""
RESPONSE_HEADER_TIMEOUT = "600s"
"""How long the interceptor waits for the engine's response headers once it forwarded a request (its
own default is 500 ms): a non-streamed completion sends them only when the whole answer is generated."""


@dataclass(frozen=True, kw_only=True)
class Owner(OwnerBase):
    """The ModelDeployment the children belong to."""

    KIND: ClassVar[str] = "ModelDeployment"
    OWNER_LABEL: ClassVar[str] = c.LABEL_MODEL_DEPLOYMENT

    @property
    def names(self) -> ChildNames:
        return ChildNames(self.name, self.namespace)


@dataclass(frozen=True, kw_only=True)
class Integrations:
    """Optional APIs found in the cluster."""

    keda: bool
    """KEDA's ScaledObject CRD (keda.sh/v1alpha1)."""
    gateway_api: bool
    """Gateway API's HTTPRoute CRD (gateway.networking.k8s.io/v1)."""
    keda_http: bool = False
    """The KEDA HTTP add-on's HTTPScaledObject CRD (http.keda.sh/v1alpha1)."""
    pod_monitor: bool = False
    """The Prometheus Operator's PodMonitor CRD (monitoring.coreos.com/v1)."""
    azure_pod_monitor: bool = False
    """Azure Monitor managed Prometheus's PodMonitor CRD (azmonitoring.coreos.com/v1), which the AKS
    metrics add-on installs and reads."""
    custom_metrics: CustomMetricsApi = NOT_FOUND
    """The custom metrics API an HPA's Pods metric is read from (a custom-metrics adapter's)."""


@dataclass(frozen=True)
class HttpAddOn:
    """Where the KEDA HTTP add-on runs: its Services as its ``config/default`` and Helm chart name them."""

    namespace: str

    @property
    def scaler_address(self) -> str:
        """The external scaler KEDA's ``external-push`` trigger streams activity from (gRPC)."""
        return f"keda-add-ons-http-external-scaler.{self.namespace}:9090"

    @property
    def interceptor_url(self) -> str:
        """The interceptor's proxy: requests sent here are routed by their ``Host`` header."""
        return f"http://keda-add-ons-http-interceptor-proxy.{self.namespace}:8080"


DEFAULT_HTTP_ADD_ON = HttpAddOn(DEFAULT_KEDA_HTTP_NAMESPACE)


@dataclass(frozen=True, kw_only=True)
class Track:
    """One serving track: the stable one, or the canary with its own model, engine or image."""

    name: str
    model: ModelSource
    """What the engine loads (for a trained adapter, its base model)."""
    engine: EngineSpec
    """The engine, with a trained adapter among its LoRA adapters."""
    served_name: str | None
    """The name the engine serves ``model`` under when a trained adapter takes the served model name
    (``<name>-base``); None: the served model name."""
    image: str
    replicas: int | None
    """Fixed replica count, or the count a new Deployment starts with under an autoscaler; None: left
    to the autoscaler (not applied)."""
    autoscaled: bool


def stable_replicas(spec: ModelDeploymentSpec) -> int:
    """Replicas of the stable track: fixed, or the count a new Deployment starts with under an autoscaler."""
    autoscaling = spec.autoscaling
    if autoscaling is not None:
        return max(autoscaling.min_replicas, 1)
    return spec.replicas if spec.replicas is not None else 1


def track_sources(spec: ModelDeploymentSpec) -> dict[str, DeploymentModelSource]:
    """The model each track names (the canary's own, else the stable one's)."""
    sources = {c.TRACK_STABLE: spec.model}
    if spec.canary is not None:
        sources[c.TRACK_CANARY] = spec.canary.model or spec.model
    return sources


def track_engine(spec: ModelDeploymentSpec, track: str) -> EngineSpec:
    if track == c.TRACK_CANARY and spec.canary is not None and spec.canary.engine is not None:
        return spec.canary.engine
    return spec.engine


def plain_models(spec: ModelDeploymentSpec) -> dict[str, TrackModel]:
    """The tracks whose model is named by URI, served as named."""
    found = {track: plain(source) for track, source in track_sources(spec).items()}
    return {track: model for track, model in found.items() if model is not None}


def track_image(spec: ModelDeploymentSpec, track: str, images: Mapping[EngineType, str]) -> str:
    """The track's image: its own (``canary.image``, ``image``), else the default image of its engine.
    A canary without an image of its own runs the stable one only when it runs the same engine."""
    engine = track_engine(spec, track).type
    if track == c.TRACK_CANARY and spec.canary is not None and spec.canary.image:
        return spec.canary.image
    if spec.image and engine is spec.engine.type:
        return spec.image
    return images[engine]


def tracks(
    spec: ModelDeploymentSpec,
    images: Mapping[EngineType, str],
    models: Mapping[str, TrackModel] | None = None,
) -> list[Track]:
    """The tracks to run, each with its resolved model (``models``; default: the models named by URI)
    and image (``images``: the default image of each engine). A track without a resolved model is left
    out (its TrainingJob has not Succeeded)."""
    models = plain_models(spec) if models is None else models
    result = []
    for name in track_sources(spec):
        model = models.get(name)
        if model is None:
            continue
        engine = track_engine(spec, name)
        if model.adapter is not None:
            settings = engine.settings.model_copy(
                update={"lora_adapters": [*engine.settings.lora_adapters, model.adapter]}
            )
            engine = engine.model_copy(update={"settings": settings})
        canary = spec.canary if name == c.TRACK_CANARY else None
        result.append(
            Track(
                name=name,
                model=model.model,
                engine=engine,
                served_name=base_served_name(model.adapter.name) if model.adapter is not None else None,
                image=track_image(spec, name, images),
                replicas=canary.replicas if canary is not None else stable_replicas(spec),
                autoscaled=canary is None and spec.autoscaling is not None,
            )
        )
    return result


def served_model_name(owner: Owner, spec: ModelDeploymentSpec) -> str:
    return spec.served_model_name or owner.name


def api_path(engine: EngineType) -> str:
    """Path of the API under the endpoint: KServe v2 for Triton, OpenAI-compatible otherwise."""
    return "/v2" if engine is EngineType.TRITON_TRTLLM else "/v1"


def config_hash(config: ServingRuntimeConfig) -> str:
    """A short hash of the runtime config, on the pod template: a changed config rolls the pods even
    though the ConfigMap keeps its name."""
    return hashlib.sha256(json.dumps(config.to_wire(), sort_keys=True).encode()).hexdigest()[:16]


def labels(owner: Owner, component: str, track: str | None = None) -> dict[str, str]:
    return common_labels(owner, component) | ({c.LABEL_TRACK: track} if track is not None else {})


def children_selector(owner: Owner) -> str:
    """Label selector of every child the controller made for this ModelDeployment."""
    return f"{c.LABEL_MODEL_DEPLOYMENT}={owner.name},{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"


def server_selector(owner: Owner) -> dict[str, str]:
    return {c.LABEL_MODEL_DEPLOYMENT: owner.name, c.LABEL_COMPONENT: c.COMPONENT_SERVER}


def track_selector(owner: Owner, track: str) -> dict[str, str]:
    return server_selector(owner) | {c.LABEL_TRACK: track}


def _metadata(owner: Owner, name: str, component: str, track: str | None = None) -> dict[str, Any]:
    return metadata(owner, name, component, {c.LABEL_TRACK: track} if track is not None else None)


# ---- runtime config -----------------------------------------------------------------------------
def runtime_config(owner: Owner, spec: ModelDeploymentSpec, track: Track) -> ServingRuntimeConfig:
    """What the track's launcher reads; ports and cache dir are the contract's defaults."""
    return ServingRuntimeConfig(
        model=track.model,
        served_model_name=track.served_name or served_model_name(owner, spec),
        engine=track.engine,
        api_key_env=API_KEY_ENV if spec.api_key_secret is not None else None,
    )


def config_map(owner: Owner, spec: ModelDeploymentSpec, track: Track) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, owner.names.config_map(track.name), c.COMPONENT_CONFIG, track.name),
        "data": {contract.CONFIG_FILE: runtime_config(owner, spec, track).to_yaml()},
    }


# ---- serving pods ---------------------------------------------------------------------------------
def _model_pvcs(track: Track) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read-only mounts of the claims named by ``pvc://`` model and adapter URIs."""
    uris = [track.model.uri, *(a.uri for a in track.engine.settings.lora_adapters)]
    return pvc_volumes(pvc_claims(uris), MODEL_PVC_VOLUME)


def _is_remote(uri: str) -> bool:
    return kind_of(uri) in (UriKind.BLOB, UriKind.HUB)


def needs_download(spec: ModelDeploymentSpec, track: Track) -> bool:
    """An init container downloads into the cache unless nothing is remote or the cache is read-only."""
    pvc = spec.model_cache.pvc
    if pvc is not None and pvc.read_only:
        return False
    uris = [track.model.uri, *(a.uri for a in track.engine.settings.lora_adapters)]
    return any(_is_remote(uri) for uri in uris)


def _volumes(owner: Owner, spec: ModelDeploymentSpec, track: Track) -> list[dict[str, Any]]:
    cache = spec.model_cache
    cache_volume: dict[str, Any]
    if cache.pvc is not None:
        cache_volume = {
            "name": CACHE_VOLUME,
            "persistentVolumeClaim": {"claimName": cache.pvc.claim_name, "readOnly": cache.pvc.read_only},
        }
    else:
        size = cache.empty_dir.size_limit if cache.empty_dir is not None else "200Gi"
        cache_volume = {"name": CACHE_VOLUME, "emptyDir": {"sizeLimit": size}}
    volumes = [
        {"name": CONFIG_VOLUME, "configMap": {"name": owner.names.config_map(track.name)}},
        cache_volume,
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}},
    ]
    return volumes + _model_pvcs(track)[0]


def _volume_mounts(spec: ModelDeploymentSpec, track: Track, *, shm: bool) -> list[dict[str, Any]]:
    pvc = spec.model_cache.pvc
    mounts: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "mountPath": contract.CONFIG_DIR, "readOnly": True},
        {
            "name": CACHE_VOLUME,
            "mountPath": contract.MODEL_CACHE_DIR,
            "readOnly": bool(pvc and pvc.read_only),
        },
    ]
    if shm:
        mounts.append({"name": SHM_VOLUME, "mountPath": contract.SHM_MOUNT})
    return mounts + _model_pvcs(track)[1]


def _env(
    spec: ModelDeploymentSpec, track: Track, identity: RuntimeIdentity, *, api_key: bool
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": contract.ENV_POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": contract.ENV_POD_NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": contract.ENV_SERVE_CONFIG, "value": f"{contract.CONFIG_DIR}/{contract.CONFIG_FILE}"},
    ]
    secret = spec.api_key_secret
    if api_key and secret is not None:
        env.append(
            {"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}}}
        )
    if track.model.token_secret is not None:
        env.append(track.model.token_secret.env_var())
    return env + identity.env() + env_list(spec.env)


def _ports(engine: EngineType) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = [
        {"name": "http", "containerPort": contract.SERVE_PORT},
        {"name": "metrics", "containerPort": contract.METRICS_PORT},
    ]
    if engine is EngineType.TRITON_TRTLLM:
        ports += [
            {"name": "grpc", "containerPort": contract.TRITON_GRPC_PORT},
            {"name": "engine-metrics", "containerPort": contract.TRITON_METRICS_PORT},
        ]
    return ports


def _probes(health_path: str) -> dict[str, Any]:
    """Startup gives a loading engine an hour; liveness and readiness only start after it passed."""
    check = {"httpGet": {"path": health_path, "port": "http"}}
    return {
        "startupProbe": check
        | {
            "periodSeconds": STARTUP_PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": STARTUP_PROBE_FAILURES,
        },
        "readinessProbe": check | {"periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": check | {"periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
    }


CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_template(
    owner: Owner,
    spec: ModelDeploymentSpec,
    track: Track,
    *,
    health_path: str,
    identity: RuntimeIdentity = NO_IDENTITY,
) -> Manifest:
    hashed = config_hash(runtime_config(owner, spec, track))
    resources = placement.resources(spec.resources, spec.resources.gpus_per_replica)
    server: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": track.image,
        "command": ["modelfleet-serve"],
        "args": ["--config", f"{contract.CONFIG_DIR}/{contract.CONFIG_FILE}"],
        "env": _env(spec, track, identity, api_key=True),
        "ports": _ports(track.engine.type),
        **_probes(health_path),
        "resources": resources,
        "volumeMounts": _volume_mounts(spec, track, shm=True),
        "securityContext": CONTAINER_SECURITY,
    }
    pod_spec: dict[str, Any] = {
        **identity.pod_spec(),
        **placement.pod_placement(spec.resources),
        **first_process.POD_SPEC,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNTIME_USER,
            "runAsGroup": RUNTIME_USER,
            "fsGroup": RUNTIME_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [server],
        "volumes": _volumes(owner, spec, track),
    }
    if needs_download(spec, track):
        no_gpu = {
            kind: {k: v for k, v in amounts.items() if k != it.GPU_RESOURCE}
            for kind, amounts in resources.items()
        }
        pod_spec["initContainers"] = [
            {
                "name": DOWNLOAD_CONTAINER,
                "image": track.image,
                # The launcher's own model resolution, so the engine container's launcher finds every
                # file in the cache and starts at once (and start-up time splits into download and load).
                "command": ["modelfleet-serve", "download"],
                "args": ["--config", f"{contract.CONFIG_DIR}/{contract.CONFIG_FILE}"],
                "env": _env(spec, track, identity, api_key=False),
                "resources": no_gpu,
                "volumeMounts": _volume_mounts(spec, track, shm=False),
                "securityContext": CONTAINER_SECURITY,
            }
        ]
    template = {
        "metadata": {
            "labels": labels(owner, c.COMPONENT_SERVER, track.name) | identity.pod_labels(),
            "annotations": {
                CONFIG_HASH_ANNOTATION: hashed,
                "kubectl.kubernetes.io/default-container": SERVER_CONTAINER,
                **scrape_annotations(track.engine.type),
            },
        },
        "spec": pod_spec,
    }
    return merge_pod(template, spec.pod_template)


def scrape_annotations(engine: EngineType) -> dict[str, str]:
    """The ``prometheus.io/*`` pod annotations that annotation-driven Prometheus scrape jobs follow
    (upstream's ``kubernetes-pods`` example job; Azure Monitor managed Prometheus with pod-annotation
    scraping enabled for the namespace): the engine's metrics, which KEDA's trigger queries."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(scrape_port(engine)),
        "prometheus.io/path": METRICS_PATH,
    }


AZURE_LABEL_LIMITS = {"labelLimit": 63, "labelNameLengthLimit": 511, "labelValueLengthLimit": 1023}
"""What Azure Monitor's PodMonitor template sets: its docs warn that a monitor without these limits
may be dropped while processed (learn.microsoft.com: azure-monitor/containers/
prometheus-metrics-scrape-crd)."""


def pod_monitor(owner: Owner, track: Track, *, azure: bool = False) -> Manifest:
    """The Prometheus Operator (or, `azure`, Azure Monitor managed Prometheus, whose add-on reads only
    its own group) scrapes the track's pods: the engine's own metrics where it has them (what KEDA's
    trigger queries) and the launcher's (model download, start-up, readiness). One per track, since a
    canary may run another engine with its metrics elsewhere."""
    engine = track.engine.type
    ports = [name for name, number in _metrics_port_names(engine) if number == scrape_port(engine)]
    ports += [] if "metrics" in ports else ["metrics"]
    return {
        "apiVersion": "azmonitoring.coreos.com/v1" if azure else "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _metadata(owner, owner.names.pod_monitor(track.name), c.COMPONENT_SERVER, track.name),
        "spec": {
            **(AZURE_LABEL_LIMITS if azure else {}),
            "selector": {"matchLabels": track_selector(owner, track.name)},
            "podMetricsEndpoints": [{"port": port, "path": METRICS_PATH} for port in ports],
        },
    }


def _metrics_port_names(engine: EngineType) -> list[tuple[str, int]]:
    return [(p["name"], p["containerPort"]) for p in _ports(engine)]


def deployment(
    owner: Owner,
    spec: ModelDeploymentSpec,
    track: Track,
    *,
    health_path: str,
    identity: RuntimeIdentity = NO_IDENTITY,
) -> Manifest:
    """One Deployment per track. Rolling updates surge one pod and keep every serving one until the
    new pod is ready (a GPU must be free for the surge pod)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, owner.names.deployment(track.name), c.COMPONENT_SERVER, track.name),
        "spec": {
            **({"replicas": track.replicas} if track.replicas is not None else {}),
            "selector": {"matchLabels": track_selector(owner, track.name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
            "revisionHistoryLimit": 3,
            "template": pod_template(owner, spec, track, health_path=health_path, identity=identity),
        },
    }


# ---- traffic ------------------------------------------------------------------------------------
def _service_ports(engine: EngineType) -> list[dict[str, Any]]:
    return [
        {"name": p["name"], "port": p["containerPort"], "targetPort": p["name"], "protocol": "TCP"}
        for p in _ports(engine)
    ]


def service(owner: Owner, engine: EngineType) -> Manifest:
    """The endpoint: selects the server pods of every track (the replica-ratio split without Gateway
    API; with it, the HTTPRoute's parent)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, owner.names.service, c.COMPONENT_SERVER),
        "spec": {
            "type": "ClusterIP",
            "selector": server_selector(owner),
            "ports": _service_ports(engine),
        },
    }


def track_service(owner: Owner, track: Track) -> Manifest:
    """One track's pods: a weighted HTTPRoute backend."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, owner.names.track_service(track.name), c.COMPONENT_SERVER, track.name),
        "spec": {
            "type": "ClusterIP",
            "selector": track_selector(owner, track.name),
            "ports": _service_ports(track.engine.type),
        },
    }


def route_weights(canary_weight: int | None, *, canary_ready: bool) -> dict[str, int]:
    """Percent of requests per track (``canary_weight`` None: no canary track runs); a canary that is
    not ready gets none until it is."""
    if canary_weight is None:
        return {c.TRACK_STABLE: 100}
    weight = canary_weight if canary_ready else 0
    return {c.TRACK_STABLE: 100 - weight, c.TRACK_CANARY: weight}


def http_route(owner: Owner, weights: dict[str, int]) -> Manifest:
    """A Gateway API route attached to the Service itself (GAMMA, mesh traffic inside the cluster):
    requests to the endpoint are split over the track Services by weight."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _metadata(owner, owner.names.http_route, c.COMPONENT_SERVER),
        "spec": {
            "parentRefs": [
                {"group": "", "kind": "Service", "name": owner.names.service, "port": contract.SERVE_PORT}
            ],
            "rules": [
                {
                    "backendRefs": [
                        {
                            "name": owner.names.track_service(track),
                            "port": contract.SERVE_PORT,
                            "weight": weight,
                        }
                        for track, weight in weights.items()
                    ]
                }
            ],
        },
    }


def pod_disruption_budget(owner: Owner) -> Manifest:
    """Voluntary disruptions (node drains, spot rebalancing) take one replica at a time; never blocks
    a drain outright, which ``minAvailable: 1`` on one replica would."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(owner, owner.names.pod_disruption_budget, c.COMPONENT_SERVER),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": server_selector(owner)}},
    }


# ---- autoscaling -----------------------------------------------------------------------------------
def _number(value: float) -> str:
    return f"{value:g}"


def _scale_target(owner: Owner) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner.names.deployment(c.TRACK_STABLE)}


def _prometheus_trigger(
    owner: Owner,
    autoscaling: AutoscalingSpec,
    metric: EngineMetric,
    prometheus_url: str,
    authentication: str | None,
) -> Manifest:
    """``authentication``: a ClusterTriggerAuthentication (workload identity for Azure Monitor managed
    Prometheus, whose query endpoint refuses anonymous queries)."""
    auth = {"authenticationRef": {"name": authentication, "kind": "ClusterTriggerAuthentication"}}
    return {
        **(auth if authentication else {}),
        "type": "prometheus",
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": prometheus_url,
            "query": metric.query(owner.namespace, owner.names.deployment(c.TRACK_STABLE)),
            "threshold": _number(autoscaling.target),
            "activationThreshold": _number(autoscaling.activation_threshold or 0.0),
        },
    }


def _interceptor_trigger(owner: Owner, add_on: HttpAddOn) -> Manifest:
    """The add-on's scaler streams the requests its interceptor holds or forwards for the
    HTTPScaledObject (the trigger the add-on would put in a ScaledObject of its own)."""
    return {
        "type": "external-push",
        "metadata": {
            "scalerAddress": add_on.scaler_address,
            "httpScaledObject": owner.names.http_scaled_object,
        },
    }


def scaled_object(
    owner: Owner,
    autoscaling: AutoscalingSpec,
    metric: EngineMetric | None,
    *,
    prometheus_url: str,
    add_on: HttpAddOn | None = None,
    authentication: str | None = None,
) -> Manifest:
    """KEDA scales the stable track on the engine's metric (``metric``) and, with ``add_on``, on the
    requests the add-on's interceptor counts (which alone can wake it from zero: at zero no replica
    exports the engine's metric); down to zero when ``minReplicas`` is 0."""
    triggers = []
    if metric is not None:
        triggers.append(_prometheus_trigger(owner, autoscaling, metric, prometheus_url, authentication))
    if add_on is not None:
        triggers.append(_interceptor_trigger(owner, add_on))
    if not triggers:
        raise ValueError("a ScaledObject needs the engine's metric or the HTTP add-on's trigger")
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(owner, owner.names.autoscaler, c.COMPONENT_SERVER),
        "spec": {
            "scaleTargetRef": _scale_target(owner),
            "pollingInterval": KEDA_POLLING_SECONDS,
            "cooldownPeriod": autoscaling.cooldown_seconds,
            "minReplicaCount": autoscaling.min_replicas,
            "maxReplicaCount": autoscaling.max_replicas,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": autoscaling.cooldown_seconds}}
                }
            },
            "triggers": triggers,
        },
    }


def http_scaled_object(owner: Owner, autoscaling: AutoscalingSpec) -> Manifest:
    """The KEDA HTTP add-on's routing for the Service: its interceptor takes requests addressed to the
    Service's names, holds them while no stable replica is ready (up to ``coldStartTimeoutSeconds``),
    then forwards them to the Service; its scaler reports them to the ScaledObject. With
    ``concurrentRequests`` the add-on's concurrency is the scaling metric at ``target`` per replica;
    otherwise its default target (100 in flight per replica) leaves scaling to the engine's metric."""
    names = owner.names
    spec: Manifest = {
        "hosts": names.hosts,
        "scaleTargetRef": {**_scale_target(owner), "service": names.service, "port": contract.SERVE_PORT},
        "replicas": {"min": autoscaling.min_replicas, "max": autoscaling.max_replicas},
        "timeouts": {
            "conditionWait": f"{autoscaling.cold_start_timeout_seconds}s",
            "responseHeader": RESPONSE_HEADER_TIMEOUT,
        },
    }
    if autoscaling.metric is AutoscalingMetric.CONCURRENT_REQUESTS:
        spec["scalingMetric"] = {"concurrency": {"targetValue": int(autoscaling.target)}}
    manifest_metadata = _metadata(owner, names.http_scaled_object, c.COMPONENT_SERVER)
    manifest_metadata["annotations"] = {SKIP_SCALED_OBJECT_ANNOTATION: "true"}
    return {
        "apiVersion": "http.keda.sh/v1alpha1",
        "kind": "HTTPScaledObject",
        "metadata": manifest_metadata,
        "spec": spec,
    }


def horizontal_pod_autoscaler(owner: Owner, autoscaling: AutoscalingSpec, metric: EngineMetric) -> Manifest:
    """The fallback without KEDA: an HPA on the per-pod metric a custom-metrics adapter serves. It
    cannot scale to zero, so it keeps at least one replica."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(owner, owner.names.autoscaler, c.COMPONENT_SERVER),
        "spec": {
            "scaleTargetRef": _scale_target(owner),
            "minReplicas": max(autoscaling.min_replicas, 1),
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": metric.adapter_name},
                        "target": {"type": "AverageValue", "averageValue": _number(autoscaling.target)},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": autoscaling.cooldown_seconds}},
        },
    }
