"""The whole desired state of one ModelDeployment: its children and what to say about routing and
autoscaling, from the spec, the integrations found in the cluster, whether the canary is ready and the
replicas each track's Deployment is applied with (pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from modelfleet_api import constants as c
from modelfleet_api.engines.metrics import INTERCEPTOR_METRICS, offered
from modelfleet_api.modeldeployment import AutoscalingSpec, InterceptorRoute, ModelDeploymentSpec
from modelfleet_api.serving import EngineType

from modelfleet_operator.common.identity import NO_IDENTITY, RuntimeIdentity
from modelfleet_operator.serving import builders
from modelfleet_operator.serving.builders import HttpAddOn, Integrations, Manifest, Owner
from modelfleet_operator.serving.policies.custom_metrics import GROUP
from modelfleet_operator.serving.policies.lineage import TrackModel
from modelfleet_operator.serving.policies.metrics import EngineMetric, engine_metric, unavailable_message
from modelfleet_operator.serving.policies.phase import Verdict


@dataclass(frozen=True, kw_only=True)
class Autoscaling:
    """The autoscaler's children and what to say about them."""

    verdict: Verdict | None = None
    """None without ``spec.autoscaling``."""
    manifests: list[Manifest] = field(default_factory=list)
    at_zero: str | None = None
    """What happens to a request while no replica runs (None: the deployment never scales to zero)."""
    interceptor: InterceptorRoute | None = None
    """How to send through the KEDA HTTP add-on's interceptor, when it routes the deployment."""


@dataclass(frozen=True, kw_only=True)
class Desired:
    children: list[Manifest]
    """In creation order: ConfigMaps, Services, Deployments, PDB, PodMonitors, autoscaler, route."""
    tracks: list[builders.Track]
    routed: Verdict
    autoscaling: Verdict | None
    """None without ``spec.autoscaling``."""
    at_zero: str | None
    """What happens to a request while the autoscaler holds no replica (None: it never scales to zero)."""
    endpoint: str
    interceptor: InterceptorRoute | None = None
    """``status.interceptor``: set while the KEDA HTTP add-on routes the deployment."""


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


def _wake(owner: Owner, autoscaling: AutoscalingSpec, add_on: HttpAddOn) -> str:
    names = owner.names
    return (
        "At zero replicas a request sent through the KEDA HTTP add-on's interceptor "
        f"({add_on.interceptor_url}, Host {names.host}) is held for up to "
        f"{autoscaling.cold_start_timeout_seconds}s while a replica starts, then answered (HTTPScaledObject "
        f"{names.http_scaled_object}); a request sent straight to Service {names.service} is not held and "
        "fails while no replica runs."
    )


def _keda(
    owner: Owner,
    autoscaling: AutoscalingSpec,
    metric: EngineMetric | None,
    integrations: Integrations,
    prometheus_url: str,
    add_on: HttpAddOn,
    authentication: str | None,
    api_path: str,
) -> Autoscaling:
    """KEDA's ScaledObject on the engine's metric and, when the add-on is installed and the deployment
    may reach zero (or scales on its count), the add-on's trigger and HTTPScaledObject."""
    intercepted = metric is None
    routed = integrations.keda_http and (intercepted or autoscaling.min_replicas == 0)
    manifests = [
        builders.scaled_object(
            owner,
            autoscaling,
            metric,
            prometheus_url=prometheus_url,
            add_on=add_on if routed else None,
            authentication=authentication,
        )
    ]
    bounds = f"{autoscaling.min_replicas}-{autoscaling.max_replicas}"
    on = []
    if metric is not None:
        auth = f", as ClusterTriggerAuthentication {authentication}" if authentication else ""
        on.append(
            f"{metric.series} at {autoscaling.target:g} per replica (Prometheus {prometheus_url}{auth})"
        )
    if routed:
        manifests.insert(0, builders.http_scaled_object(owner, autoscaling))
        counted = f"at {autoscaling.target:g} per replica" if intercepted else "to wake it"
        on.append(f"requests in flight through the KEDA HTTP add-on's interceptor ({counted})")
    message = f"KEDA ScaledObject {owner.names.autoscaler} scales {bounds} replicas on {' and '.join(on)}."
    at_zero = None
    if autoscaling.min_replicas == 0 and routed:
        at_zero = _wake(owner, autoscaling, add_on)
        message += f" Scales to zero after {autoscaling.cooldown_seconds}s without load. {at_zero}"
    elif autoscaling.min_replicas == 0 and metric is not None:
        at_zero = (
            f"Nothing wakes it on a request: at zero no replica exports {metric.series}, "
            f"and a request sent to Service {owner.names.service} finds no replica and fails. Install the "
            "KEDA HTTP add-on (its interceptor then holds requests and wakes the deployment) or set "
            "minReplicas to 1 or more."
        )
        message += f" Scales to zero after {autoscaling.cooldown_seconds}s without load. {at_zero}"
    elif intercepted:
        message += (
            f" Only requests sent through the interceptor ({add_on.interceptor_url}, Host "
            f"{owner.names.host}) count; those sent straight to Service {owner.names.service} do not."
        )
    verdict = Verdict(status=True, reason=c.REASON_KEDA_SCALED_OBJECT, message=message)
    interceptor = (
        InterceptorRoute(url=f"{add_on.interceptor_url}{api_path}", host=owner.names.host) if routed else None
    )
    return Autoscaling(verdict=verdict, manifests=manifests, at_zero=at_zero, interceptor=interceptor)


def _unavailable(message: str) -> Verdict:
    return Verdict(status=False, reason=c.REASON_AUTOSCALER_UNAVAILABLE, message=message)


def _autoscaling(
    owner: Owner,
    spec: ModelDeploymentSpec,
    integrations: Integrations,
    prometheus_url: str,
    add_on: HttpAddOn,
    authentication: str | None,
) -> Autoscaling:
    autoscaling = spec.autoscaling
    if autoscaling is None:
        return Autoscaling()
    intercepted = autoscaling.metric in INTERCEPTOR_METRICS
    metric = None if intercepted else engine_metric(spec.engine.type, autoscaling.metric)
    if metric is None and not intercepted:
        message = unavailable_message(spec.engine.type, autoscaling.metric)
        return Autoscaling(verdict=_unavailable(message))
    if integrations.keda and (integrations.keda_http or not intercepted):
        api_path = builders.api_path(spec.engine.type)
        return _keda(
            owner, autoscaling, metric, integrations, prometheus_url, add_on, authentication, api_path
        )
    floor = max(autoscaling.min_replicas, 1)
    if metric is None:
        missing = " and ".join(
            name
            for name, found in (("KEDA", integrations.keda), ("the KEDA HTTP add-on", integrations.keda_http))
            if not found
        )
        message = (
            f"autoscaling.metric {autoscaling.metric.value} is counted by the KEDA HTTP add-on's "
            f"interceptor, and {missing} {'are' if ' and ' in missing else 'is'} not installed: replicas "
            f"stay at {floor}. Install {missing}, "
            f"or scale on a metric the engine exports ({offered(spec.engine.type)})."
        )
        return Autoscaling(verdict=_unavailable(message))
    manifest = builders.horizontal_pod_autoscaler(owner, autoscaling, metric)
    return Autoscaling(verdict=_hpa_verdict(owner, autoscaling, metric, integrations), manifests=[manifest])


def _hpa_verdict(
    owner: Owner, autoscaling: AutoscalingSpec, metric: EngineMetric, integrations: Integrations
) -> Verdict:
    """The fallback HPA scales only while a custom-metrics adapter serves its Pods metric."""
    floor = max(autoscaling.min_replicas, 1)
    hpa = f"HorizontalPodAutoscaler {owner.names.autoscaler}"
    api = integrations.custom_metrics
    if not api.served:
        message = (
            f"KEDA is not installed and {hpa} cannot scale: it reads the pod metric "
            f"{metric.adapter_name} from the custom metrics API ({GROUP}), which is not served "
            f"({api.detail}). Replicas stay at their count, within {floor}-{autoscaling.max_replicas}. "
            f"Install a custom-metrics adapter such as prometheus-adapter with a rule that serves "
            f"{metric.series} as the pods metric {metric.adapter_name}, or install KEDA, which reads "
            "Prometheus itself."
        )
        return Verdict(status=False, reason=c.REASON_CUSTOM_METRICS_UNAVAILABLE, message=message)
    zero_note = (
        f" minReplicas 0 needs KEDA: the HPA keeps at least {floor} replica."
        if autoscaling.min_replicas == 0
        else ""
    )
    message = (
        f"KEDA is not installed; {hpa} scales {floor}-{autoscaling.max_replicas} replicas on the pod "
        f"metric {metric.adapter_name} from the custom metrics API ({api.detail}; its adapter must serve "
        f"that metric).{zero_note} Install KEDA for scale to zero."
    )
    return Verdict(status=True, reason=c.REASON_HPA_FALLBACK, message=message)


def desired(
    owner: Owner,
    spec: ModelDeploymentSpec,
    *,
    images: Mapping[EngineType, str],
    health_paths: Mapping[EngineType, str],
    integrations: Integrations,
    prometheus_url: str,
    add_on: HttpAddOn = builders.DEFAULT_HTTP_ADD_ON,
    keda_authentication: str | None = None,
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
    if integrations.pod_monitor:
        children += [builders.pod_monitor(owner, t) for t in tracks]
    if integrations.azure_pod_monitor:
        children += [builders.pod_monitor(owner, t, azure=True) for t in tracks]
    autoscaling = _autoscaling(owner, spec, integrations, prometheus_url, add_on, keda_authentication)
    children += autoscaling.manifests
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
        autoscaling=autoscaling.verdict,
        at_zero=autoscaling.at_zero,
        endpoint=owner.names.endpoint(builders.api_path(spec.engine.type)),
        interceptor=autoscaling.interceptor,
    )
