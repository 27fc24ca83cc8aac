"""A resource's ``spec.podTemplate`` merged into a pod template the operator built (pure).

The operator's parts win where the pod depends on them, and the user's are added everywhere else:

- labels and annotations: the user's, then the operator's over them (selectors, owner, config hash);
- tolerations: the operator's (GPU and spot taints), then the user's;
- node affinity: a required term of the user's must also satisfy the operator's (the spot
  requirement), so each of the user's terms is joined with each of the operator's (an OR of ANDs
  stays one); preferred terms are the user's;
- image pull secrets and volumes: the operator's, then the user's;
- the user's volume mounts go into every container and init container the operator made;
- sidecars become native sidecars (init containers with ``restartPolicy: Always``) placed before the
  operator's init containers, so they run from before the model download to after the workload, and
  a Job's pod still completes; they get the operator's container security settings.

The CRD refuses overlays that would collide with the operator's names, paths and ports
(``modelfleet_api.pods.ReservedPodParts``), so nothing of the user's is dropped here.
"""

from __future__ import annotations

import copy
from typing import Any

from modelfleet_api.base import ApiModel
from modelfleet_api.common import env_list
from modelfleet_api.pods import PodTemplate, Sidecar

Manifest = dict[str, Any]

SIDECAR_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
"""Sidecars run without privileges, as the operator's own serving and benchmark containers do."""
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _k8s(part: ApiModel) -> Manifest:
    """A part of the overlay as Kubernetes spells it: fields left at their defaults are left out (each
    default is Kubernetes' own)."""
    return part.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)


def merge_pod(template: Manifest, overlay: PodTemplate | None) -> Manifest:
    """``template`` (``{"metadata": ..., "spec": ...}``) with ``overlay`` merged in; a new dict."""
    if overlay is None:
        return template
    merged = copy.deepcopy(template)
    meta, spec = merged.setdefault("metadata", {}), merged["spec"]
    _metadata(meta, overlay)
    added = overlay.spec
    if added.tolerations:
        spec["tolerations"] = [*spec.get("tolerations", []), *(_k8s(t) for t in added.tolerations)]
    if added.affinity is not None and added.affinity.node_affinity is not None:
        _node_affinity(spec, _k8s(added.affinity.node_affinity))
    if added.image_pull_secrets:
        spec["imagePullSecrets"] = [
            *spec.get("imagePullSecrets", []),
            *({"name": s.name} for s in added.image_pull_secrets),
        ]
    if added.volumes:
        spec["volumes"] = [*spec.get("volumes", []), *(_k8s(v) for v in added.volumes)]
    if added.volume_mounts:
        mounts = [_k8s(m) for m in added.volume_mounts]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            container["volumeMounts"] = [*container.get("volumeMounts", []), *copy.deepcopy(mounts)]
    if added.sidecars:
        spec["initContainers"] = [*(sidecar(s) for s in added.sidecars), *spec.get("initContainers", [])]
    return merged


def _metadata(meta: Manifest, overlay: PodTemplate) -> None:
    for key, extra in (("labels", overlay.metadata.labels), ("annotations", overlay.metadata.annotations)):
        if extra:
            meta[key] = {**extra, **meta.get(key, {})}


def _node_affinity(spec: Manifest, added: Manifest) -> None:
    node = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    if REQUIRED in added:
        theirs = added[REQUIRED]["nodeSelectorTerms"]
        ours = node.get(REQUIRED, {}).get("nodeSelectorTerms", [])
        terms = (
            [
                {"matchExpressions": [*o["matchExpressions"], *t["matchExpressions"]]}
                for t in theirs
                for o in ours
            ]
            if ours
            else theirs
        )
        node[REQUIRED] = {"nodeSelectorTerms": terms}
    if added.get(PREFERRED):
        node[PREFERRED] = [*node.get(PREFERRED, []), *added[PREFERRED]]


def sidecar(container: Sidecar) -> Manifest:
    """A native sidecar: an init container that keeps running beside the workload."""
    wire = _k8s(container)
    built: Manifest = {
        key: wire[key] for key in ("name", "image", "imagePullPolicy", "command", "args") if key in wire
    }
    if container.env:
        built["env"] = env_list(container.env)
    built |= {key: wire[key] for key in ("ports", "resources", "volumeMounts") if wire.get(key)}
    return built | {"restartPolicy": "Always", "securityContext": SIDECAR_SECURITY}
