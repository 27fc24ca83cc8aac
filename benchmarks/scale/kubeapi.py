"""A thin JSON client of the Kubernetes API for the benchmark's hot paths.

The ``kubernetes`` package reads the kubeconfig (server, CA, client certificate or token); urllib3, which
that package uses underneath, sends the requests. The generated API classes are left out on purpose:
they turn every answer into model objects, which costs several times the CPU of the request itself
(issue 18 measured ~6x for the dynamic client), and the reference client must spend its CPU on requests,
or its rate would be the client's limit instead of the API server's.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines

Json = dict[str, Any]
RETRIES_429 = 30
"""Answers of 429 (API Priority and Fairness, or a CRD's storage still starting) are retried after the
server's Retry-After, as client-go does."""


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


class KubeApi:
    """Requests as the kubeconfig's user, over one connection pool shared by ``pool_size`` threads."""

    def __init__(self, kubeconfig: Path, pool_size: int = 8) -> None:
        settings = client.Configuration()
        config.load_kube_config(str(kubeconfig), client_configuration=settings)
        self.server = settings.host.rstrip("/")
        self._headers = {"Accept": "application/json", "Content-Type": "application/json"}
        token = settings.get_api_key_with_prefix("BearerToken") or settings.get_api_key_with_prefix(
            "authorization"
        )
        if token:
            self._headers["Authorization"] = token
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=pool_size,
            block=True,
            ca_certs=settings.ssl_ca_cert,
            cert_file=settings.cert_file,
            key_file=settings.key_file,
            retries=False,
        )

    def request(
        self,
        method: str,
        path: str,
        body: Json | None = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Json:
        """The answer's JSON; raises ApiError on any status outside 2xx."""
        url = self.server + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        encoded = json.dumps(body).encode() if body is not None else None
        for _ in range(RETRIES_429):
            response = self._pool.request(
                method,
                url,
                body=encoded,
                headers={**self._headers, "Content-Type": content_type},
                timeout=urllib3.Timeout(connect=10, read=120),
            )
            if response.status != 429:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
        if not 200 <= response.status < 300:
            raise ApiError(method, path, response.status, response.data.decode(errors="replace"))
        answer: Json = json.loads(response.data) if response.data else {}
        return answer

    def create(self, path: str, manifest: Json) -> Json:
        return self.request("POST", path, manifest)

    def text(self, path: str) -> str:
        """A non-JSON page (``/metrics``)."""
        response = self._pool.request("GET", self.server + path, headers={**self._headers, "Accept": "*/*"})
        if response.status != 200:
            raise ApiError("GET", path, response.status, response.data.decode(errors="replace"))
        return str(response.data.decode())

    def watch(self, path: str, resource_version: str, timeout_seconds: int) -> WatchStream:
        """A watch from ``resource_version`` that the server ends after ``timeout_seconds``."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        url = f"{self.server}{path}?{urllib.parse.urlencode(query)}"
        for _ in range(RETRIES_429):
            response = self._pool.request(
                "GET",
                url,
                headers=self._headers,
                preload_content=False,
                timeout=urllib3.Timeout(connect=10, read=timeout_seconds + 30),
            )
            if response.status != 429:
                break
            response.drain_conn()
            time.sleep(float(response.headers.get("Retry-After", "1")))
        if response.status != 200:
            raise ApiError("GET", path, response.status, response.data.decode(errors="replace"))
        return WatchStream(response)


class WatchStream:
    """The events of one watch request; ``close()`` from another thread ends the iteration."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[Json]:
        try:
            for line in iter_resp_lines(self._response):
                if line:
                    event: Json = json.loads(line)
                    yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError):
            return  # closed under us, or the server ended the stream
        finally:
            self._response.release_conn()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already closed: nothing to stop
            self._response.shutdown()


def collection_path(api_version: str, plural: str, namespace: str | None) -> str:
    """``/api/v1/namespaces/NS/pods`` or ``/apis/GROUP/VERSION/namespaces/NS/PLURAL``."""
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{root}/namespaces/{namespace}/{plural}" if namespace else f"{root}/{plural}"
