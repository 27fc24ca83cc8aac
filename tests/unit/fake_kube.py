"""An in-memory API and kopf's indexes over it, for the reconcile unit tests.

``FakeKube`` stands in for ``modelfleet_operator.kube.Kube`` (apply, delete, status patch) and records
what a pass wrote, so a test can assert what it did (and that an idle pass writes nothing). Its
``indexes()`` are what kopf's would hold for the same objects: built with the operator's own
projection and keying (``common.live.project``, ``common.indexes.owner_keys``). ``Harness`` runs the
engine's passes over one object as its daemon would.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from modelfleet_operator.common import indexes as ix
from modelfleet_operator.common.kinds import (
    MODEL_DEPLOYMENT,
    OBSERVED_KINDS,
    SERVICE_ACCOUNT,
    TRAINING_JOB,
    Kind,
)
from modelfleet_operator.common.live import FIELD_MANAGER, project
from modelfleet_operator.common.reconcile import Controller, Engine

Key = tuple[str, str, str]
CREATED = "2026-11-22T09:00:00Z"


class FakeKube:
    """Just enough of ``Kube`` (apply, delete, patch_status) over a dict of objects."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.uids = itertools.count(1)
        self.applies: list[tuple[str, str]] = []
        self.deletes: list[tuple[str, str]] = []
        self.status_writes = 0
        self.fail_next_delete = False
        self.refuse_next_apply_of: set[str] = set()

    # ---- Kube --------------------------------------------------------------------------------------
    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Stores the object; an apply of a kind in ``refuse_next_apply_of`` fails once, as one the API
        server refused would."""
        key = (manifest["kind"], manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        if key[0] in self.refuse_next_apply_of:
            self.refuse_next_apply_of.discard(key[0])
            raise PermissionError(f"{key[0]} {key[2]} refused")
        previous = self.objects.get(key)
        stored = copy.deepcopy(manifest)
        meta = stored["metadata"]
        if previous is None:
            meta |= {"uid": f"uid-{next(self.uids)}", "creationTimestamp": CREATED}
        else:
            meta |= {k: previous["metadata"][k] for k in ("uid", "creationTimestamp")}
            if "status" in previous:
                stored["status"] = previous["status"]
            if "replicas" not in stored.get("spec", {}) and "replicas" in previous.get("spec", {}):
                stored["spec"]["replicas"] = previous["spec"]["replicas"]  # the autoscaler's
        spec_fields = {f"f:{k}": {} for k in manifest.get("spec", {})}
        meta["managedFields"] = [
            {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": spec_fields}}
        ]
        self.objects[key] = stored
        self.applies.append((key[0], key[2]))
        return copy.deepcopy(stored)

    async def delete(self, kind: Kind, name: str, namespace: str | None) -> bool:
        """Removes the object; with ``fail_next_delete`` set, the call fails once as a lost API would."""
        if self.fail_next_delete:
            self.fail_next_delete = False
            raise ConnectionError("operator lost the API server")
        self.deletes.append((kind.kind, name))
        return self.objects.pop((kind.kind, namespace or "", name), None) is not None

    async def patch_status(
        self, kind: Kind, name: str, namespace: str | None, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        found = self.objects.get((kind.kind, namespace or "", name))
        if found is None:
            return None
        stored = found.setdefault("status", {})
        for key, value in status.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = value
        self.status_writes += 1
        return copy.deepcopy(found)

    # ---- what the cluster holds ------------------------------------------------------------------
    def add(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """An object made by someone else than the operator (a user, a controller, the kubelet)."""
        meta = manifest["metadata"]
        meta.setdefault("uid", f"uid-{next(self.uids)}")
        meta.setdefault("creationTimestamp", CREATED)
        self.objects[(manifest["kind"], meta.get("namespace", ""), meta["name"])] = manifest
        return manifest

    def add_named(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """An object a spec names (a Secret, a claim; namespace "" for a PriorityClass)."""
        self.add(
            {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}}
        )

    def add_service_account(self, namespace: str, name: str) -> None:
        self.add(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
        )

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def indexes(self) -> ix.Indexes:
        """What kopf's indexes would hold for these objects."""
        found: dict[str, dict[Any, list[Any]]] = {index: {} for index in ix.REFERENCED.values()}
        found[ix.MODEL_DEPLOYMENTS] = {}

        def put(index: str, key: Any, value: Any) -> None:
            found.setdefault(index, {}).setdefault(key, []).append(value)

        for (kind_name, namespace, name), body in self.objects.items():
            labels = body["metadata"].get("labels") or {}
            kind = next((k for k in OBSERVED_KINDS if k.kind == kind_name), None)
            if kind is not None and labels.get("app.kubernetes.io/managed-by") == "modelfleet-operator":
                for key in ix.owner_keys(labels, namespace):
                    put(kind.index_id, key, project(kind, body))
            if kind is SERVICE_ACCOUNT:
                put(ix.SERVICE_ACCOUNTS, (namespace, name), True)
            if kind is MODEL_DEPLOYMENT:
                put(ix.MODEL_DEPLOYMENTS, (namespace, name), project(MODEL_DEPLOYMENT, body))
            if kind_name in ix.REFERENCED:
                put(ix.REFERENCED[kind_name], (namespace, name), True)
            if kind_name == TRAINING_JOB.kind:
                put(ix.TRAINING_JOBS, (namespace, name), project(TRAINING_JOB, body))
            if kind_name == "CustomResourceDefinition":
                put(ix.CRDS, name, ix.crd_summary(body))
            if kind_name == "APIService":
                put(ix.API_SERVICES, name, ix.api_service_summary(body))
            if kind_name == "Workload":
                for key, summary in ix.workload_keys(body).items():
                    put(ix.WORKLOADS_BY_JOB, key, summary)
        return ix.Indexes(found)


class Harness:
    """One object's passes, run as its daemon runs them (the status from the latest write)."""

    def __init__(
        self,
        kube: FakeKube,
        controller: Controller[Any, Any],
        body: dict[str, Any],
        clock: Callable[[], datetime],
        capacity: Any = None,
    ) -> None:
        self.kube = kube
        self.events: list[tuple[str, str]] = []
        self.messages: list[str] = []
        self.engine: Engine[Any, Any] = Engine(
            controller,
            kube,
            self._post,
            capacity=capacity,
            clock=clock,  # type: ignore[arg-type]
        )
        self.key = (body["kind"], body["metadata"]["namespace"], body["metadata"]["name"])
        stored = kube.objects.get(self.key)
        if stored is not None and "status" in stored:  # a new engine (a restarted operator), same API state
            body.setdefault("status", stored["status"])
        kube.objects[self.key] = body
        self.requeue_at: datetime | None = None

    def _post(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason))
        self.messages.append(message)

    @property
    def body(self) -> dict[str, Any]:
        return self.kube.objects[self.key]

    @property
    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = self.body.get("status", {})
        return found

    def conditions(self) -> dict[str, tuple[str, str]]:
        return {x["type"]: (x["status"], x["reason"]) for x in self.status.get("conditions", [])}

    def reconcile(self) -> None:
        body = copy.deepcopy(self.body)
        outcome = asyncio.run(self.engine.run(body, body.get("status"), self.kube.indexes()))
        self.requeue_at = outcome.requeue_at
