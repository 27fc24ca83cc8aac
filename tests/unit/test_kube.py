"""The I/O layer against a local HTTP server standing in for the API server (aiohttp's test server):
the requests a server-side apply, a delete and a status patch send, what comes back, and how failures
are counted. (The cluster tier runs the same layer against the real kube-apiserver.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from modelfleet_operator.common.kinds import JOB, TRAINING_JOB
from modelfleet_operator.kube import ApiError, Kube
from prometheus_client import REGISTRY

pytestmark = pytest.mark.unit

Seen = list[tuple[str, str, dict[str, str], str, Any]]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def kubeconfig(path: Path, url: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "u"}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run(
    tmp_path: Path,
    respond: Callable[[web.Request], web.Response],
    scenario: Callable[[Kube], Awaitable[None]],
) -> Seen:
    seen: Seen = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.text()
        seen.append(
            (
                request.method,
                request.path,
                dict(request.query),
                request.headers.get("Content-Type", ""),
                json.loads(body) if body else None,
            )
        )
        assert request.headers["Authorization"] == "Bearer t0ken"
        return respond(request)

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with TestServer(app) as server:
            kube = Kube(kubeconfig=kubeconfig(tmp_path / "kubeconfig", str(server.make_url(""))))
            await kube.start()
            try:
                await scenario(kube)
            finally:
                await kube.close()

    asyncio.run(main())
    return seen


JOB_MANIFEST = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "tj", "namespace": "ml"},
    "spec": {},
}


def test_apply_is_a_forced_server_side_apply_by_the_operators_field_manager(tmp_path: Path) -> None:
    def respond(request: web.Request) -> web.Response:
        return web.json_response({**JOB_MANIFEST, "metadata": {**JOB_MANIFEST["metadata"], "uid": "u1"}})

    async def scenario(kube: Kube) -> None:
        applied = await kube.apply(JOB_MANIFEST)
        assert applied["metadata"]["uid"] == "u1"

    seen = run(tmp_path, respond, scenario)

    assert seen == [
        (
            "PATCH",
            "/apis/batch/v1/namespaces/ml/jobs/tj",
            {"fieldManager": "modelfleet-operator", "force": "true"},
            "application/apply-patch+yaml",
            JOB_MANIFEST,
        )
    ]


def test_delete_names_its_propagation_and_a_missing_object_is_an_answer(tmp_path: Path) -> None:
    answers = iter(
        [web.json_response({"kind": "Status"}), web.json_response({"reason": "NotFound"}, status=404)]
    )
    before = sample("modelfleet_api_errors_total", verb="delete", code="404")

    async def scenario(kube: Kube) -> None:
        assert await kube.delete(JOB, "tj", "ml") is True
        assert await kube.delete(JOB, "tj", "ml") is False

    seen = run(tmp_path, lambda _: next(answers), scenario)

    assert [(m, p, b) for m, p, _, _, b in seen] == [
        ("DELETE", "/apis/batch/v1/namespaces/ml/jobs/tj", {"propagationPolicy": "Foreground"}),
    ] * 2
    assert sample("modelfleet_api_errors_total", verb="delete", code="404") == before


def test_status_is_merge_patched_on_the_subresource(tmp_path: Path) -> None:
    def respond(request: web.Request) -> web.Response:
        return web.json_response({"status": {"phase": "Running"}})

    async def scenario(kube: Kube) -> None:
        answer = await kube.patch_status(TRAINING_JOB, "tj", "ml", {"phase": "Running", "gone": None})
        assert answer == {"status": {"phase": "Running"}}

    seen = run(tmp_path, respond, scenario)

    assert seen == [
        (
            "PATCH",
            "/apis/modelfleet.io/v1alpha1/namespaces/ml/trainingjobs/tj/status",
            {},
            "application/merge-patch+json",
            {"status": {"phase": "Running", "gone": None}},
        )
    ]


def test_refused_and_unanswered_requests_are_counted_by_verb_and_code(tmp_path: Path) -> None:
    before = sample("modelfleet_api_errors_total", verb="apply", code="422")
    requests_before = sample("modelfleet_api_requests_total", verb="apply")

    def respond(request: web.Request) -> web.Response:
        body = {"kind": "Status", "reason": "Invalid", "message": "spec.template: field is immutable"}
        return web.json_response(body, status=422)

    async def scenario(kube: Kube) -> None:
        with pytest.raises(ApiError, match=r"422 Invalid: spec\.template: field is immutable") as error:
            await kube.apply(JOB_MANIFEST)
        assert error.value.status == 422

    run(tmp_path, respond, scenario)
    assert sample("modelfleet_api_errors_total", verb="apply", code="422") == before + 1
    assert sample("modelfleet_api_requests_total", verb="apply") == requests_before + 1

    connection_before = sample("modelfleet_api_errors_total", verb="patch", code="connection")

    async def unreachable() -> None:
        kube = Kube(kubeconfig=kubeconfig(tmp_path / "gone", "http://127.0.0.1:9"))
        await kube.start()
        try:
            with pytest.raises(ApiError, match="no answer"):
                await kube.patch_status(TRAINING_JOB, "tj", "ml", {})
        finally:
            await kube.close()

    asyncio.run(unreachable())
    assert sample("modelfleet_api_errors_total", verb="patch", code="connection") == connection_before + 1


def test_the_proxy_the_environment_names_is_looked_up_once_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server's proxy comes from ``HTTP(S)_PROXY`` as before, but is read when the client
    starts, not again (on a worker thread) for every request."""
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxied: list[tuple[str, str]] = []

    async def proxy(request: web.Request) -> web.Response:
        proxied.append((request.host, request.path))
        return web.json_response({"status": {}})

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy)
        async with TestServer(app) as server:
            monkeypatch.setenv("HTTP_PROXY", str(server.make_url("")))
            kube = Kube(kubeconfig=kubeconfig(tmp_path / "kubeconfig", "http://kube-api.example:6443"))
            await kube.start()
            monkeypatch.delenv("HTTP_PROXY")
            try:
                await kube.patch_status(TRAINING_JOB, "tj", "ml", {"phase": "Running"})
            finally:
                await kube.close()

    asyncio.run(main())
    assert proxied == [
        ("kube-api.example", "/apis/modelfleet.io/v1alpha1/namespaces/ml/trainingjobs/tj/status")
    ]
