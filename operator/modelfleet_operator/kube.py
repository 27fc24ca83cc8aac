"""The Kubernetes I/O layer: the only module of the operator that imports a Kubernetes client.

Everything above it works with plain manifest dicts. Reads come from kopf's watch-fed indexes, so this
layer only writes, with three verbs:

- ``apply``: server-side apply with one field manager (``modelfleet``) and ``force``, as controllers
  should (the API server merges what the operator owns and leaves other managers' fields alone; a
  child edited by hand is put back by the next apply);
- ``delete``: with the kind's propagation policy (``batch/v1`` Jobs otherwise orphan their pods);
- ``patch_status``: a JSON merge patch of the status subresource.

Why ``kubernetes_asyncio`` and its raw ``call_api``: every pass runs on kopf's event loop, so a pass
never waits in a thread pool's queue for a worker thread (the sync client's cost at scale: passes
queued for minutes behind asyncio's 6 default threads), and cancelling a pass cannot leave a thread
writing behind it. ``_preload_content=False`` with ``orjson.loads`` skips the generated models' response
wrapping, which costs several times the CPU of the request itself; the client still brings the
kubeconfig and in-cluster token handling. REST paths come from ``common.kinds`` (no discovery).

Concurrency is bounded by the connection pool (``max_connections``) and, when ``qps`` is set, by a
token bucket, so a burst of passes cannot flood a shared API server. Every call is counted in
``modelfleet_api_requests_total{verb}`` and every failure in ``modelfleet_api_errors_total{verb,code}``
(a 404 on delete or status patch is an answer, not a failure).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from kubernetes_asyncio import client, config
from yarl import URL

from modelfleet_operator.common.kinds import Kind, kind_of
from modelfleet_operator.common.live import FIELD_MANAGER
from modelfleet_operator.metrics import count_api_error, count_api_request

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT_SECONDS = 30.0
READ_BUFFER_BYTES = 2**21
"""aiohttp's read buffer, as kubernetes_asyncio sets it (an object may be up to etcd's 1.5 MiB)."""
_CREATED = 201
_NOT_FOUND = 404
_CONFLICT = 409


class ApiError(Exception):
    """A request the API server refused (or that got no answer: ``status`` None)."""

    def __init__(self, verb: str, status: int | None, reason: str, message: str) -> None:
        super().__init__(f"{verb} failed: {status or 'no answer'} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class RateLimiter:
    """A token bucket: at most ``qps`` requests a second on average, ``burst`` at once."""

    def __init__(self, qps: float, burst: int) -> None:
        self._rate = qps
        self._capacity = float(max(burst, 1))
        self._tokens = self._capacity
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self._rate)


async def load_api_client(max_connections: int, kubeconfig: str | None = None) -> client.ApiClient:
    """A client for the pod's service account in a cluster, else for ``kubeconfig`` (default:
    ``$KUBECONFIG``, else ~/.kube/config)."""
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            raise config.ConfigException("a kubeconfig was named")
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config(
            config_file=kubeconfig or os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    configuration.connection_pool_maxsize = max_connections
    api = client.ApiClient(configuration)
    _distrust_environment(api.rest_client, configuration.host)
    return api


def _distrust_environment(rest: Any, host: str | None) -> None:
    """Give ``rest`` (the client's ``RESTClientObject``) a session that does not read the environment.

    kubernetes_asyncio opens its aiohttp session with ``trust_env=True``, so aiohttp looks up the proxy
    variables and ``~/.netrc`` again for every request, each on a worker thread: two thread hops per
    call, about 6 % of the operator's CPU in a burst of new TrainingJobs. The API server's address is
    fixed, so its proxy (``HTTPS_PROXY`` unless ``NO_PROXY`` names it) is looked up once, here, with
    aiohttp's own lookup; credentials come from the kubeconfig or the service account, never netrc.
    """
    session: aiohttp.ClientSession = rest.pool_manager
    connector = session.connector
    session.detach()  # the connector (its TLS settings and pool size) moves to the new session
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=READ_BUFFER_BYTES
    )
    if rest.proxy or not host:  # the kubeconfig names one
        return
    try:
        proxy, proxy_auth = get_env_proxy_for_url(URL(host))
    except LookupError:  # no proxy for this address
        return
    rest.proxy = str(proxy)
    if proxy_auth is not None:
        rest.proxy_headers = {**(rest.proxy_headers or {}), "Proxy-Authorization": proxy_auth.encode()}


class Kube:
    """Writes of manifests, addressed through ``common.kinds``. ``start`` before the first call."""

    def __init__(
        self, *, max_connections: int = 64, qps: float = 0.0, burst: int = 0, kubeconfig: str | None = None
    ) -> None:
        self._max_connections = max_connections
        self._kubeconfig = kubeconfig
        self._limiter = RateLimiter(qps, burst or int(qps * 2)) if qps > 0 else None
        self._api: client.ApiClient | None = None

    async def start(self) -> None:
        if self._api is None:
            self._api = await load_api_client(self._max_connections, self._kubeconfig)

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply of ``manifest`` (created when absent); the object as stored."""
        kind = kind_of(manifest)
        meta = manifest["metadata"]
        path = kind.path(meta.get("namespace"), meta["name"])
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        try:
            code, applied = await self._request("apply", "PATCH", path, query, manifest, APPLY_PATCH)
        except ApiError as error:
            if error.status != _CONFLICT:
                raise
            # Two applies creating the same object at once: the loser's create answers 409, and the
            # same apply now updates the object the winner made.
            code, applied = await self._request("apply", "PATCH", path, query, manifest, APPLY_PATCH)
        what = "created" if code == _CREATED else "applied"  # an existing child is applied when it drifted
        logger.info("%s %s %s/%s", what, kind.kind, meta.get("namespace"), meta["name"])
        return applied

    async def delete(self, kind: Kind, name: str, namespace: str | None) -> bool:
        """Delete the object (dependents per the kind's propagation); False when it was already gone."""
        body = {"propagationPolicy": kind.propagation}
        path = kind.path(namespace, name)
        code, _ = await self._request("delete", "DELETE", path, {}, body, "application/json", missing_ok=True)
        if code == _NOT_FOUND:
            return False
        logger.info("deleted %s %s/%s (%s)", kind.kind, namespace, name, kind.propagation)
        return True

    async def patch_status(
        self, kind: Kind, name: str, namespace: str | None, status: dict[str, Any]
    ) -> Manifest | None:
        """Merge-patch ``status`` through the status subresource; the object, or None when it is gone."""
        path = kind.path(namespace, name, "status")
        body = {"status": status}
        code, answer = await self._request("patch", "PATCH", path, {}, body, MERGE_PATCH, missing_ok=True)
        return None if code == _NOT_FOUND else answer

    async def _request(
        self,
        verb: str,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        content_type: str,
        *,
        missing_ok: bool = False,
    ) -> tuple[int, Manifest]:
        """(HTTP status, answer) of a request that succeeded, or found nothing (404) when ``missing_ok``."""
        if self._api is None:
            raise RuntimeError("Kube.start() was not awaited")
        if self._limiter is not None:
            await self._limiter.wait()
        count_api_request(verb)
        try:
            response = await self._api.call_api(
                path,
                method,
                query_params=list(query.items()),
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
            async with response:
                payload = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            count_api_error(verb, None)
            raise ApiError(verb, None, type(error).__name__, str(error)) from error
        answer: Manifest = orjson.loads(payload) if payload else {}
        if status == _NOT_FOUND and missing_ok:
            return status, answer
        if not 200 <= status < 300:
            count_api_error(verb, status)
            raise ApiError(verb, status, str(answer.get("reason", "")), str(answer.get("message", payload)))
        return status, answer
