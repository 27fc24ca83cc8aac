"""Every Kubernetes kind the operator reads or writes, with what the I/O layer and the indexes need to
know about it (pure data).

The operator addresses a fixed set of kinds, so their REST names come from this table instead of API
discovery (which costs a round of requests per group at start and a lookup per call). A child kind also
says how a prune deletes it and which parts of it are compared for drift (``compared``; None: the whole
applied manifest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelfleet_api import API_VERSION


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True
    propagation: str = "Background"
    """How a prune deletes an object of this kind (its dependents go in the background or first)."""
    compared: tuple[str, ...] | None = None
    """Dotted paths of the applied manifest that a live object must match; None: all of it."""
    wave: int = 0
    """Apply order within a pass: children of one wave go at once, after the waves before (a
    RoleBinding after its Role; pod owners after what their pods use, the RoleBinding included, so a
    pod never starts without the rights it runs with; autoscalers, monitors and routes after what
    they point at). A wave failing stops the later ones for that pass. The worker Job's own wave
    after the binding's costs a new TrainingJob one more round trip; in bursts of 1,000 on one
    machine (benchmarks/operator_scale.py, single runs) the operator made children at 0.746 of the
    plain client's rate with it and 0.721 with the Job beside the binding: within the noise."""
    atomic_lists: bool = False
    """Every list of this kind's objects is atomic for server-side apply (no ``listType: map``): an
    apply replaces it whole and nobody else adds to it, so a live list with an item the plan no longer
    has has drifted (``live.drifted``)."""
    alias: str | None = None
    """The kind's name in index and handler ids when another group has a kind of the same plural (a
    Python identifier); unset: the plural."""

    @property
    def key(self) -> str:
        return self.alias or self.plural

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def index_id(self) -> str:
        """The kopf index of this kind's objects by owner (a Python identifier: kopf passes indexes to
        handlers as keyword arguments)."""
        return f"{self.key}_by_owner"

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path of the collection, or of one object (and its subresource)."""
        root = f"/api/{self.version}" if not self.group else f"/apis/{self.api_version}"
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        parts = [f"{root}{scope}/{self.plural}"]
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        return "/".join(parts)


SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts")
ROLE = Kind("rbac.authorization.k8s.io/v1", "Role", "roles")
# After its Role: without the ``bind`` verb (the chart grants none) the API server checks the Role's
# rules against the operator's own, and refuses a binding whose Role does not exist yet.
ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", wave=1)
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SERVICE = Kind("v1", "Service", "services")
JOB = Kind(
    "batch/v1",
    "Job",
    "jobs",
    # Foreground: the Job object stays until its pods are gone, so a controller that waits for it to
    # disappear never starts a new gang beside pods of the old one.
    propagation="Foreground",
    # A Job's pod template is immutable: only what can change on a live Job is compared (a template
    # built differently, after an operator upgrade, applies to the next attempt's Job).
    compared=("metadata.labels", "metadata.ownerReferences", "spec.parallelism", "spec.completions"),
    wave=2,
)
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments", wave=2)
POD_DISRUPTION_BUDGET = Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
HORIZONTAL_POD_AUTOSCALER = Kind(
    "autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", wave=3
)
SCALED_OBJECT = Kind("keda.sh/v1alpha1", "ScaledObject", "scaledobjects", wave=3)
HTTP_SCALED_OBJECT = Kind("http.keda.sh/v1alpha1", "HTTPScaledObject", "httpscaledobjects", wave=3)
POD_MONITOR = Kind("monitoring.coreos.com/v1", "PodMonitor", "podmonitors", wave=3)
# Azure Monitor managed Prometheus's own copy of the Prometheus Operator's PodMonitor (the same schema
# under another group, installed with the AKS metrics add-on, which reads only this group).
AZURE_POD_MONITOR = Kind(
    "azmonitoring.coreos.com/v1", "PodMonitor", "podmonitors", wave=3, alias="azure_podmonitors"
)
HTTP_ROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes", wave=3, atomic_lists=True)
POD = Kind("v1", "Pod", "pods")
CUSTOM_RESOURCE_DEFINITION = Kind(
    "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False
)
API_SERVICE = Kind("apiregistration.k8s.io/v1", "APIService", "apiservices", namespaced=False)
SECRET = Kind("v1", "Secret", "secrets")
PERSISTENT_VOLUME_CLAIM = Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
PRIORITY_CLASS = Kind("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", namespaced=False)
TRAINING_JOB = Kind(API_VERSION, "TrainingJob", "trainingjobs")
KUEUE_WORKLOAD = Kind("kueue.x-k8s.io/v1beta2", "Workload", "workloads")
"""What Kueue made of a worker Job it manages (``spec.queueName``): read, never written."""
MODEL_DEPLOYMENT = Kind(API_VERSION, "ModelDeployment", "modeldeployments", wave=2)
BENCHMARK_SWEEP = Kind(API_VERSION, "BenchmarkSweep", "benchmarksweeps")

CHILD_KINDS = (
    SERVICE_ACCOUNT,
    ROLE,
    ROLE_BINDING,
    CONFIG_MAP,
    SERVICE,
    JOB,
    DEPLOYMENT,
    POD_DISRUPTION_BUDGET,
    HORIZONTAL_POD_AUTOSCALER,
    SCALED_OBJECT,
    HTTP_SCALED_OBJECT,
    POD_MONITOR,
    AZURE_POD_MONITOR,
    HTTP_ROUTE,
    MODEL_DEPLOYMENT,
    BENCHMARK_SWEEP,
)
"""Kinds the controllers apply and prune."""
OBSERVED_KINDS = (*CHILD_KINDS, POD)
"""Kinds indexed by owner: the children, and the pods their Jobs and Deployments run."""
REFERENCED_KINDS = (SECRET, PERSISTENT_VOLUME_CLAIM, PRIORITY_CLASS)
"""Kinds a spec names that the operator does not create (``common.references``): indexed by name, so a
pass knows whether they exist without a request."""

_BY_KIND = {(k.api_version, k.kind): k for k in (*OBSERVED_KINDS, TRAINING_JOB, BENCHMARK_SWEEP)}


def kind_of(manifest: dict[str, Any]) -> Kind:
    """The table entry of a manifest's ``apiVersion`` and ``kind``."""
    try:
        return _BY_KIND[manifest["apiVersion"], manifest["kind"]]
    except KeyError:
        raise ValueError(
            f"the operator does not manage {manifest['apiVersion']} {manifest['kind']}"
        ) from None
