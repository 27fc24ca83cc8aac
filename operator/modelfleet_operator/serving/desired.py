"""The whole desired state of one ModelDeployment: its children and what to say about routing and
autoscaling, from the spec, the integrations found in the cluster, whether the canary is ready and the
replicas each track's Deployment is applied with (pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from modelfleet_api import constants as c
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.serving import EngineType

from modelfleet_operator.common.identity import NO_IDENTITY, RuntimeIdentity
from modelfleet_operator.serving import builders
from modelfleet_operator.serving.builders import Integrations, Manifest, Owner
from modelfleet_operator.serving.policies.lineage import TrackModel
from modelfleet_operator.serving.policies.metrics import engine_metric, unavailable_message
from modelfleet_operator.serving.policies.phase import Verdict


@dataclass(frozen=True, kw_only=True)
class Desired:
    children: list[Manifest]
    """In creation order: ConfigMaps, Services, Deployments, PDB, autoscaler, route."""
    tracks: list[builders.Track]
    routed: Verdict
    autoscaling: Verdict | None
    """None without ``spec.autoscaling``."""
    endpoint: str


def _routing(
    owner: Owner,
    spec: ModelDeploymentSpec,
    integrations: Integrations,
    weights: dict[str, int],
    canary_weight: int | None,
    canary_replicas: int,
) -> Verdict:
    service = owner.names.service
    if integrations.gateway_api:
        split = ", ".join(f"{track} {weight}%" for track, weight in weights.items())
        pending = (
            " The canary gets no traffic until its replicas are ready."
            if spec.canary is not None and weights.get(c.TRACK_CANARY, 0) != canary_weight
            else ""
        )
        return Verdict(
            status=True,
            reason=c.REASON_HTTP_ROUTE,
            message=(
                f"HTTPRoute {owner.names.http_route} splits requests to Service {service}: {split}.{pending} "
                f"The split needs a Gateway API mesh implementation (GAMMA) in the cluster."
            ),
        )
    if spec.canary is None or c.TRACK_CANARY not in weights:
        message = f"Gateway API is not installed; Service {service} selects the replicas."
    else:
        stable = builders.stable_replicas(spec)
        canary = canary_replicas
        share = round(100 * canary / (stable + canary))
        message = (
            f"Gateway API is not installed; Service {service} selects both tracks, so the canary gets about "
            f"{share}% of requests ({canary} of {stable + canary} replicas) instead of canary.weight "
            f"{canary_weight}%. Install the Gateway API CRDs and a mesh for an exact split."
        )
    return Verdict(status=True, reason=c.REASON_SERVICE_FALLBACK, message=message)


def _autoscaling(
    owner: Owner, spec: ModelDeploymentSpec, integrations: Integrations, prometheus_url: str
) -> tuple[Verdict | None, Manifest | None]:
    autoscaling = spec.autoscaling
    if autoscaling is None:
        return None, None
    metric = engine_metric(spec.engine.type, autoscaling.metric)
    if metric is None:
        message = unavailable_message(spec.engine.type, autoscaling.metric)
        return Verdict(status=False, reason=c.REASON_AUTOSCALER_UNAVAILABLE, message=message), None
    bounds = f"{autoscaling.min_replicas}-{autoscaling.max_replicas}"
    target = f"{metric.series} at {autoscaling.target:g} per replica"
    if integrations.keda:
        manifest = builders.scaled_object(owner, autoscaling, metric, prometheus_url=prometheus_url)
        zero = (
            " Scales to zero when idle; scaling up from zero needs the metric to report load while "
            "no replica runs."
            if autoscaling.min_replicas == 0
            else ""
        )
        message = (
            f"KEDA ScaledObject {owner.names.autoscaler} scales {bounds} replicas on {target} "
            f"(Prometheus {prometheus_url}).{zero}"
        )
        return Verdict(status=True, reason=c.REASON_KEDA_SCALED_OBJECT, message=message), manifest
    manifest = builders.horizontal_pod_autoscaler(owner, autoscaling, metric)
    floor = max(autoscaling.min_replicas, 1)
    zero_note = (
        f" minReplicas 0 needs KEDA: the HPA keeps at least {floor} replica."
        if autoscaling.min_replicas == 0
        else ""
    )
    message = (
        f"KEDA is not installed; HorizontalPodAutoscaler {owner.names.autoscaler} scales {floor}-"
        f"{autoscaling.max_replicas} replicas on the pod metric {metric.adapter_name} (served by a "
        f"custom-metrics adapter such as prometheus-adapter).{zero_note} Install KEDA for scale to zero."
    )
    return Verdict(status=True, reason=c.REASON_HPA_FALLBACK, message=message), manifest


def desired(
    owner: Owner,
    spec: ModelDeploymentSpec,
    *,
    images: Mapping[EngineType, str],
    health_paths: Mapping[EngineType, str],
    integrations: Integrations,
    prometheus_url: str,
    canary_ready: bool,
    identity: RuntimeIdentity = NO_IDENTITY,
    autoscaled_replicas: int | None = None,
    new_deployment: bool = True,
    models: Mapping[str, TrackModel] | None = None,
    canary_weight: int | None = None,
    canary_replicas: int | None = None,
    track_services: bool = False,
) -> Desired:
    """``new_deployment``: the stable Deployment does not exist yet; ``autoscaled_replicas``: the
    replicas it has while the operator still owns them (it applied them before an autoscaler took
    over). Under an autoscaler a new Deployment starts with the autoscaler's minimum (at least 1); an
    existing one is applied without ``replicas``, which are the autoscaler's. ``models``: each track's
    resolved model (default: the models named by URI); the stable one must be there, a canary without
    one is not run. A canary analysis sets the canary's weight and (rolled back) its replicas, and needs
    each track's Service (``track_services``) to measure the tracks apart."""
    tracks = builders.tracks(spec, images, models)
    if tracks[0].autoscaled and not new_deployment:
        tracks[0] = replace(tracks[0], replicas=autoscaled_replicas)
    if canary_replicas is not None:
        tracks = [replace(t, replicas=canary_replicas) if t.name == c.TRACK_CANARY else t for t in tracks]
    canary_runs = spec.canary is not None and any(t.name == c.TRACK_CANARY for t in tracks)
    if canary_weight is None and spec.canary is not None:
        canary_weight = spec.canary.weight
    weights = builders.route_weights(canary_weight if canary_runs else None, canary_ready=canary_ready)
    children = [builders.config_map(owner, spec, t) for t in tracks]
    children.append(builders.service(owner, spec.engine.type))
    if integrations.gateway_api or track_services:
        children += [builders.track_service(owner, t) for t in tracks]
    children += [
        builders.deployment(owner, spec, t, health_path=health_paths[t.engine.type], identity=identity)
        for t in tracks
    ]
    children.append(builders.pod_disruption_budget(owner))
    autoscaling, autoscaler = _autoscaling(owner, spec, integrations, prometheus_url)
    if autoscaler is not None:
        children.append(autoscaler)
    if integrations.gateway_api:
        children.append(builders.http_route(owner, weights))
    return Desired(
        children=children,
        tracks=tracks,
        routed=_routing(
            owner,
            spec,
            integrations,
            weights,
            canary_weight,
            next((t.replicas or 0 for t in tracks if t.name == c.TRACK_CANARY), 0),
        ),
        autoscaling=autoscaling,
        endpoint=owner.names.endpoint(builders.api_path(spec.engine.type)),
    )
