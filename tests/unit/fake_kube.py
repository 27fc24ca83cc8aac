"""An in-memory stand-in for ``modelfleet_operator.kube.Kube``, shared by the reconcile unit tests.

Objects live in a dict keyed by (kind, namespace, name); creates, deletes and status writes are
recorded so a test can assert what a reconcile pass did (and that an idle pass writes nothing).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

Key = tuple[str, str, str]


class FakeKube:
    """Just enough of ``Kube``: get, list by labels, create-if-absent, patch, status patch, delete."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.uids = itertools.count(1)
        self.creates: list[tuple[str, str]] = []
        self.deletes: list[tuple[str, str]] = []
        self.status_writes = 0
        self.fail_next_delete = False

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        found = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(found) if found else None

    def list(self, api_version: str, kind: str, namespace: str | None, *, label_selector: str) -> list[Any]:
        wanted = dict(term.split("=") for term in label_selector.split(","))
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind and ns == namespace and wanted.items() <= o["metadata"].get("labels", {}).items()
        ]

    def add_service_account(self, namespace: str, name: str) -> None:
        """A ServiceAccount as a cluster admin would create it (not through the operator)."""
        self.objects[("ServiceAccount", namespace, name)] = {
            "metadata": {"name": name, "namespace": namespace}
        }

    def create_if_absent(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        key = (manifest["kind"], manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        if key in self.objects:
            return copy.deepcopy(self.objects[key]), False
        stored = copy.deepcopy(manifest)
        stored["metadata"] |= {"uid": f"uid-{next(self.uids)}", "creationTimestamp": "2026-11-22T09:00:00Z"}
        self.objects[key] = stored
        self.creates.append((key[0], key[2]))
        return copy.deepcopy(stored), True

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> Any:
        self.objects[(kind, namespace or "", name)].update(patch)

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: Any) -> Any:
        stored = self.objects[(kind, namespace or "", name)].setdefault("status", {})
        for key, value in status.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = value
        self.status_writes += 1
        return stored

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None, **_: Any) -> bool:
        """Removes the object; with ``fail_next_delete`` set, the call fails once as a lost API would."""
        if self.fail_next_delete:
            self.fail_next_delete = False
            raise ConnectionError("operator lost the API server")
        self.deletes.append((kind, name))
        return self.objects.pop((kind, namespace or "", name), None) is not None
