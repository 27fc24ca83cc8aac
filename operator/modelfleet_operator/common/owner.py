"""The resource that owns a controller's children, and the labels and metadata every child carries (pure).

Each controller declares its owner as a subclass naming the kind, the label that points a child back at
its owner and the child names; the helpers here then build the same ``app.kubernetes.io/*`` labels and
controller owner reference for all three kinds, so ``kubectl get all -l app.kubernetes.io/instance=NAME``
shows the family and deleting the owner garbage-collects it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from modelfleet_api import API_VERSION
from modelfleet_api import constants as c
from modelfleet_api.resource import CustomResource

Manifest = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The custom resource the children belong to (subclasses set ``KIND`` and ``OWNER_LABEL``)."""

    KIND: ClassVar[str]
    """Kind of the owning resource (``TrainingJob``)."""
    OWNER_LABEL: ClassVar[str]
    """Label on every child naming its owner (``modelfleet.io/training-job``)."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, resource: CustomResource) -> Self:
        meta = resource.metadata
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])

    def reference(self) -> dict[str, Any]:
        """Controller owner reference: deleting the owner garbage-collects the child."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def labels(owner: Owner, component: str) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels of a child plus the label naming its owner."""
    return {
        c.LABEL_NAME: owner.KIND.lower(),
        c.LABEL_INSTANCE: owner.name,
        c.LABEL_COMPONENT: component,
        c.LABEL_PART_OF: c.PART_OF,
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
        owner.OWNER_LABEL: owner.name,
    }


def metadata(
    owner: Owner, name: str, component: str, extra_labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """``metadata`` of a child in the owner's namespace: name, labels and the owner reference."""
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, component) | (extra_labels or {}),
        "ownerReferences": [owner.reference()],
    }


def selector(labels: dict[str, str]) -> str:
    """A label selector string matching all of ``labels``."""
    return ",".join(f"{key}={value}" for key, value in labels.items())
