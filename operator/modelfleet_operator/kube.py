"""The thin Kubernetes I/O layer: the only module of the operator that imports the client.

Everything above it works with plain manifest dicts; this module turns them into API calls through
the client's dynamic client (one code path for built-in kinds and custom resources). Its rules:

- create-if-absent: a 409 on create means someone (an earlier run of this operator) made the
  object already, which is success; the existing object is returned;
- deletes name their propagation policy, because ``batch/v1`` Jobs otherwise orphan their pods;
- status is written through the status subresource with a JSON merge patch of the changed keys;
- every call that fails out of this layer is counted in ``modelfleet_api_errors_total{verb,code}``
  (answers the layer turns into a result, a 404 on get or a 409 on create, are not failures).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import kubernetes
import urllib3
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from modelfleet_operator.metrics import count_api_error

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]

_MERGE_PATCH = "application/merge-patch+json"
_CONFLICT = 409
_NOT_FOUND = 404

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _counts_errors(verb: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Count the API errors (HTTP status, or no answer at all) that leave the decorated call."""

    def decorate(call: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(call)
        def counted(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return call(*args, **kwargs)
            except kubernetes.client.ApiException as error:
                count_api_error(verb, error.status)
                raise
            except (urllib3.exceptions.HTTPError, OSError):
                count_api_error(verb, None)
                raise

        return counted

    return decorate


def load_api_client() -> kubernetes.client.ApiClient:
    """A client for the pod's service account in a cluster, else for ``$KUBECONFIG``/~/.kube/config."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    return kubernetes.client.ApiClient()


class Kube:
    """Kubernetes operations on manifests, addressed by ``apiVersion``, ``kind``, name and namespace."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self._dynamic = DynamicClient(api_client or load_api_client())  # type: ignore[no-untyped-call]

    def _resource(self, api_version: str, kind: str) -> Any:
        return self._dynamic.resources.get(api_version=api_version, kind=kind)

    @_counts_errors("get")
    def has_kind(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves this kind (e.g. a KEDA or Gateway API CRD is installed)."""
        try:
            self._resource(api_version, kind)
        except ResourceNotFoundError:
            return False
        return True

    @_counts_errors("get")
    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Manifest | None:
        try:
            found = self._resource(api_version, kind).get(name=name, namespace=namespace)
        except NotFoundError:
            return None
        return _to_dict(found)

    @_counts_errors("list")
    def list(
        self, api_version: str, kind: str, namespace: str | None, *, label_selector: str
    ) -> list[Manifest]:
        found = self._resource(api_version, kind).get(namespace=namespace, label_selector=label_selector)
        return [_to_dict(item) for item in found.items]

    @_counts_errors("create")
    def create_if_absent(self, manifest: Manifest) -> tuple[Manifest, bool]:
        """Create the object; when it exists already return the stored one. (object, created)."""
        meta = manifest["metadata"]
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        try:
            created = resource.create(body=manifest, namespace=meta.get("namespace"))
        except kubernetes.client.ApiException as error:
            if error.status != _CONFLICT:
                raise
            existing = self.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
            if existing is None:  # deleted between our create and get: the next reconcile recreates it
                raise
            return existing, False
        logger.info("created %s %s/%s", manifest["kind"], meta.get("namespace"), meta["name"])
        return _to_dict(created), True

    @_counts_errors("patch")
    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> Manifest:
        """JSON merge patch of the object (lists are replaced whole)."""
        patched = self._resource(api_version, kind).patch(
            body=patch, name=name, namespace=namespace, content_type=_MERGE_PATCH
        )
        return _to_dict(patched)

    @_counts_errors("patch")
    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: dict[str, Any]
    ) -> Manifest | None:
        """Merge-patch ``status`` through the status subresource; None when the object is gone."""
        try:
            patched = self._resource(api_version, kind).status.patch(
                body={"status": status}, name=name, namespace=namespace, content_type=_MERGE_PATCH
            )
        except NotFoundError:
            return None
        return _to_dict(patched)

    @_counts_errors("delete")
    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        *,
        propagation: str = "Background",
    ) -> bool:
        """Delete the object (dependents per ``propagation``); False when it was already gone."""
        try:
            self._resource(api_version, kind).delete(
                name=name, namespace=namespace, body={"propagationPolicy": propagation}
            )
        except NotFoundError:
            return False
        logger.info("deleted %s %s/%s (%s)", kind, namespace, name, propagation)
        return True


def _to_dict(instance: Any) -> Manifest:
    result: Manifest = instance.to_dict()
    return result
