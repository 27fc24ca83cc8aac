"""The objects a spec names that the operator does not create, and what to say while one is missing (pure).

The CRD checks every such name on apply (a Secret, claim or PriorityClass name of the right format);
whether the object exists depends on the cluster, so it is reported through the ``ReferencesReady``
condition instead: the resource waits, naming what is missing, and proceeds once it appears, like
``ServiceAccountReady`` for the runtime ServiceAccount (which ``common.identity`` handles).

A reconcile pass looks each ``Reference`` up in kopf's indexes (``common.indexes.Indexes.missing``) and
hands the missing ones to ``Draft.references_ready``; while any is missing it creates no pod owner.

Named but not checked: ConfigMaps of ``env[].valueFrom.configMapKeyRef`` (the operator watches only
its own ConfigMaps; the kubelet reports a missing one as ``CreateContainerConfigError``, which the
pod problems name) and image pull secrets (a public image needs none). A key ref marked ``optional``
is not a reference: the pod starts without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelfleet_api import constants as c
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec
from modelfleet_api.common import EnvVar
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.storage import StorageUri, UriKind, kind_of
from modelfleet_api.trainingjob import TrainingJobSpec


@dataclass(frozen=True, kw_only=True)
class Reference:
    """An object a spec names."""

    api_version: str
    kind: str
    name: str
    field: str
    """The spec field that names it (`spec.apiKeySecret.name`)."""
    namespaced: bool = True

    def missing_text(self, namespace: str) -> str:
        where = f" in namespace {namespace}" if self.namespaced else ""
        return f"{self.kind} {self.name} ({self.field}) does not exist{where}"


@dataclass(frozen=True)
class Lookup:
    """What a pass found of the objects a spec names."""

    named: tuple[Reference, ...] = ()
    missing: tuple[Reference, ...] = ()


NOTHING_NAMED = Lookup()


def _claims(uris: Iterable[tuple[str, str | None]]) -> list[Reference]:
    """The claims of ``pvc://`` URIs, as (field, uri) pairs name them."""
    return [
        Reference(api_version="v1", kind="PersistentVolumeClaim", name=claim, field=field)
        for field, uri in uris
        if uri is not None
        and kind_of(uri) is UriKind.PVC
        and (claim := StorageUri(uri, UriKind.PVC).pvc_claim) is not None
    ]


def _secret(name: str, field: str) -> Reference:
    return Reference(api_version="v1", kind="Secret", name=name, field=field)


def _env_secrets(env: Iterable[EnvVar], prefix: str) -> list[Reference]:
    """Secrets of ``env[].valueFrom.secretKeyRef`` that are not optional."""
    return [
        _secret(ref.name, f"{prefix}.env[{i}].valueFrom.secretKeyRef.name")
        for i, var in enumerate(env)
        if var.value_from is not None
        and (ref := var.value_from.secret_key_ref) is not None
        and not ref.optional
    ]


def training_references(spec: TrainingJobSpec) -> list[Reference]:
    """What a TrainingJob's workers need to exist before they can start (the claims are those
    ``training.builders`` mounts)."""
    model = spec.model
    uris = [
        ("spec.model.uri", model.uri if model else None),
        ("spec.model.tokenizerUri", model.tokenizer_uri if model else None),
        ("spec.dataset.uri", spec.dataset.uri),
        ("spec.checkpoint.uri", spec.checkpoint.uri),
        ("spec.output.uri", spec.output.uri),
    ]
    evaluation = spec.evaluation
    if evaluation is not None:
        uris += [
            ("spec.evaluation.dataset.uri", evaluation.dataset.uri if evaluation.dataset else None),
            ("spec.evaluation.generation.uri", evaluation.generation.uri if evaluation.generation else None),
            ("spec.evaluation.lmEval.tasksUri", evaluation.lm_eval.tasks_uri if evaluation.lm_eval else None),
        ]
    found = _claims(uris)
    if model is not None and model.token_secret is not None:
        found.append(_secret(model.token_secret.name, "spec.model.tokenSecret.name"))
    for tracker in ("wandb", "comet"):
        spec_of = getattr(spec.tracking, tracker)
        if spec_of is not None and spec_of.api_key_secret is not None:
            found.append(_secret(spec_of.api_key_secret.name, f"spec.tracking.{tracker}.apiKeySecret.name"))
    found += _env_secrets(spec.env, "spec")
    if spec.priority_class_name:
        found.append(
            Reference(
                api_version="scheduling.k8s.io/v1",
                kind="PriorityClass",
                name=spec.priority_class_name,
                field="spec.priorityClassName",
                namespaced=False,
            )
        )
    return _unique(found)


def serving_references(spec: ModelDeploymentSpec, prefix: str = "spec") -> list[Reference]:
    """What a ModelDeployment's replicas need to exist before they can start."""
    uris = [(f"{prefix}.model.uri", spec.model.uri)]
    uris += [
        (f"{prefix}.engine.settings.loraAdapters[{i}].uri", a.uri)
        for i, a in enumerate(spec.engine.settings.lora_adapters)
    ]
    if spec.canary is not None:
        if spec.canary.model is not None:
            uris.append((f"{prefix}.canary.model.uri", spec.canary.model.uri))
        if spec.canary.engine is not None:
            uris += [
                (f"{prefix}.canary.engine.settings.loraAdapters[{i}].uri", a.uri)
                for i, a in enumerate(spec.canary.engine.settings.lora_adapters)
            ]
    found = _claims(uris)
    if spec.model_cache.pvc is not None:
        found.append(
            Reference(
                api_version="v1",
                kind="PersistentVolumeClaim",
                name=spec.model_cache.pvc.claim_name,
                field=f"{prefix}.modelCache.pvc.claimName",
            )
        )
    if spec.api_key_secret is not None:
        found.append(_secret(spec.api_key_secret.name, f"{prefix}.apiKeySecret.name"))
    models = [("model", spec.model)]
    if spec.canary is not None and spec.canary.model is not None:
        models.append(("canary.model", spec.canary.model))
    found += [
        _secret(model.token_secret.name, f"{prefix}.{path}.tokenSecret.name")
        for path, model in models
        if model.token_secret is not None
    ]
    found += _env_secrets(spec.env, prefix)
    return _unique(found)


def sweep_references(spec: BenchmarkSweepSpec) -> list[Reference]:
    """What a sweep measures or creates from that must exist: referenced ModelDeployments and what its
    templates' deployments need."""
    found: list[Reference] = []
    for i, target in enumerate(spec.targets):
        if target.deployment_ref is not None:
            found.append(
                Reference(
                    api_version="modelfleet.io/v1alpha1",
                    kind="ModelDeployment",
                    name=target.deployment_ref,
                    field=f"spec.targets[{i}].deploymentRef",
                )
            )
        if target.template is not None:
            found += serving_references(target.template, f"spec.targets[{i}].template")
    return _unique(found)


def _unique(references: list[Reference]) -> list[Reference]:
    """One entry per object (the first field that names it), in spec order."""
    seen: dict[tuple[str, str], Reference] = {}
    for reference in references:
        seen.setdefault((reference.kind, reference.name), reference)
    return list(seen.values())


def references_condition(missing: list[Reference], namespace: str) -> tuple[str, str, str]:
    """(status, reason, message) of ``ReferencesReady`` for the references found missing."""
    if not missing:
        return "True", c.REASON_REFERENCES_FOUND, "Every object the spec names exists."
    listed = "; ".join(r.missing_text(namespace) for r in missing)
    return (
        "False",
        c.REASON_REFERENCE_MISSING,
        f"{listed}. Create {'it' if len(missing) == 1 else 'them'} or change the spec; the resource waits "
        "and proceeds once everything it names exists.",
    )
