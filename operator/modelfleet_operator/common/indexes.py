"""The operator's view of the cluster: kopf's watch-fed indexes, keyed and read here (pure).

kopf keeps each index up to date from its watch streams and waits, at start, until every indexed kind
has been listed before any daemon runs, so a pass after an operator restart sees every child that
exists. Children and pods are indexed by the owner label they carry (``owner_keys``), so a pass finds an
object's family with one dict lookup per kind instead of a LIST call; ServiceAccounts and CRDs by name.
The functions that compute an object's keys are here too, so the keying and the reading cannot drift
apart; ``common.handlers`` registers them with kopf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelfleet_api import constants as c

from modelfleet_operator.common.kinds import MODEL_DEPLOYMENT, POD, REFERENCED_KINDS, Kind
from modelfleet_operator.common.live import Live
from modelfleet_operator.common.references import Lookup, Reference

Manifest = dict[str, Any]
OwnerKey = tuple[str, str, str]
"""(owner label, namespace, owner name): the label says which kind of owner."""

OWNER_LABELS = (c.LABEL_TRAINING_JOB, c.LABEL_MODEL_DEPLOYMENT, c.LABEL_BENCHMARK_SWEEP)
"""Labels naming a child's owner; each names one kind of owner."""
SERVICE_ACCOUNTS = "serviceaccounts_by_name"
CRDS = "customresourcedefinitions_by_name"
API_SERVICES = "apiservices_by_name"
"""APIServices of the aggregated groups a plan depends on (``handlers.API_SERVICE_USERS``), by name."""
MODEL_DEPLOYMENTS = "modeldeployments_by_name"
SWEEPS_BY_TARGET = "benchmarksweeps_by_target"
"""Sweeps by the (namespace, deployment) of every target they name, to wake them when it changes."""
TRAINING_JOBS = "trainingjobs_by_name"
REFERENCED = {kind.kind: f"{kind.plural}_by_name" for kind in REFERENCED_KINDS}
"""The index of each kind a spec may name, by (namespace, name); "" for a cluster-scoped one."""
WORKLOADS_BY_JOB = "workloads_by_job"
"""Kueue's Workloads by the (namespace, uid) of the Job that owns each (``workload_keys``)."""
DEPLOYMENTS_BY_TRAINING_JOB = "modeldeployments_by_trainingjob"
"""ModelDeployments by the (namespace, TrainingJob) their tracks serve (``model.fromTrainingJob``), to
wake them when the job changes."""


def training_jobs_named(spec: Mapping[str, Any]) -> list[str]:
    """The TrainingJobs a ModelDeployment spec serves from (stable and canary)."""
    models = [spec.get("model") or {}, (spec.get("canary") or {}).get("model") or {}]
    return sorted(
        {m["fromTrainingJob"]["name"] for m in models if (m.get("fromTrainingJob") or {}).get("name")}
    )


def owner_keys(labels: Mapping[str, str], namespace: str | None) -> list[OwnerKey]:
    """The owners an object belongs to, from its owner labels."""
    return [(label, namespace or "", labels[label]) for label in OWNER_LABELS if labels.get(label)]


def crd_summary(body: Mapping[str, Any]) -> Manifest:
    """What detection needs of a CRD: the versions it serves once Established, and whether it goes."""
    established = any(
        cond.get("type") == "Established" and cond.get("status") == c.CONDITION_TRUE
        for cond in (body.get("status") or {}).get("conditions") or []
    )
    served = [v["name"] for v in (body.get("spec") or {}).get("versions") or [] if v.get("served")]
    deleting = bool((body.get("metadata") or {}).get("deletionTimestamp"))
    return {"served": served if established and not deleting else []}


def api_service_summary(body: Mapping[str, Any]) -> Manifest:
    """What a plan needs of an APIService: its Available condition as the aggregator set it (status
    "Unknown" before the aggregator's first check), and whether it goes."""
    conditions = (body.get("status") or {}).get("conditions") or []
    available: Manifest = next((cond for cond in conditions if cond.get("type") == "Available"), {})
    deleting = bool((body.get("metadata") or {}).get("deletionTimestamp"))
    return {
        "available": available.get("status") == c.CONDITION_TRUE and not deleting,
        "reason": "Deleting" if deleting else available.get("reason") or "",
        "message": "the APIService is being deleted" if deleting else available.get("message") or "",
    }


def workload_keys(body: Mapping[str, Any]) -> dict[tuple[str, str], Manifest]:
    """A Kueue Workload under the (namespace, uid) of each Job that owns it, with what a plan reads of
    it: its name and its conditions (Kueue copies none of the Job's labels onto it by default, so the
    owner reference is the link)."""
    meta = body.get("metadata") or {}
    conditions = [
        {k: cond[k] for k in ("type", "status", "reason", "message") if k in cond}
        for cond in (body.get("status") or {}).get("conditions") or []
    ]
    summary = {"metadata": {"name": meta.get("name")}, "status": {"conditions": conditions}}
    namespace = meta.get("namespace") or ""
    return {
        (namespace, ref["uid"]): summary
        for ref in meta.get("ownerReferences") or []
        if ref.get("kind") == "Job" and ref.get("apiVersion") == "batch/v1" and ref.get("uid")
    }


class Indexes:
    """The indexes kopf passed to a daemon (live mappings: each read sees the latest events)."""

    def __init__(self, found: Mapping[str, Mapping[Any, Iterable[Any]]]) -> None:
        self._found = found

    def _values(self, index: str, key: Any) -> list[Any]:
        store = self._found.get(index)
        if store is None or key not in store:
            return []
        return list(store[key])

    def owned(self, label: str, namespace: str, name: str, kinds: Sequence[Kind]) -> list[Live]:
        """Children of the owner (``label`` names its kind) of these kinds, as indexed."""
        key = (label, namespace, name)
        return [live for kind in kinds for live in self._values(kind.index_id, key)]

    def pods(self, label: str, namespace: str, name: str) -> list[Manifest]:
        """The owner's pods (of every Job or Deployment it has), as indexed."""
        return [live.manifest for live in self._values(POD.index_id, (label, namespace, name))]

    def service_account_exists(self, namespace: str, name: str) -> bool:
        return bool(self._values(SERVICE_ACCOUNTS, (namespace, name)))

    def look_up(self, references: Sequence[Reference], namespace: str) -> Lookup:
        """Which of the ``references`` (of a resource in ``namespace``) do not exist, as indexed. A
        kind the operator does not index (Secrets, when it may not read them) is not checked."""
        checked, missing = [], []
        for ref in references:
            index = MODEL_DEPLOYMENTS if ref.kind == MODEL_DEPLOYMENT.kind else REFERENCED[ref.kind]
            if index not in self._found:
                continue
            checked.append(ref)
            if not self._values(index, (namespace if ref.namespaced else "", ref.name)):
                missing.append(ref)
        return Lookup(named=tuple(checked), missing=tuple(missing))

    def serves(self, crd: str, version: str | None = None) -> bool:
        """Whether the CustomResourceDefinition ``crd`` is Established and serves ``version`` (any)."""
        return any(
            version in summary["served"] if version else bool(summary["served"])
            for summary in self._values(CRDS, crd)
        )

    def api_service(self, name: str) -> Manifest | None:
        """An indexed APIService's ``api_service_summary`` (None: it does not exist)."""
        found = self._values(API_SERVICES, name)
        return found[0] if found else None

    def workload(self, namespace: str, job_uid: str) -> Manifest | None:
        """Kueue's Workload of a Job (``workload_keys``), as indexed; None while there is none."""
        found = self._values(WORKLOADS_BY_JOB, (namespace, job_uid))
        return found[0] if found else None

    def training_job(self, namespace: str, name: str) -> Manifest | None:
        """A TrainingJob by name, as indexed."""
        found = self._values(TRAINING_JOBS, (namespace, name))
        return found[0].manifest if found else None

    def model_deployment(self, namespace: str, name: str) -> Manifest | None:
        """A ModelDeployment by name (any owner, or none), as indexed."""
        found = self._values(MODEL_DEPLOYMENTS, (namespace, name))
        return found[0].manifest if found else None
