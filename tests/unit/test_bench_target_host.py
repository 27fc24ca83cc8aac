"""``targetHost``: the benchmark client sends the given Host header (HTTP/2: ``:authority``) to a proxy
that routes by it (the KEDA HTTP add-on's interceptor), on every protocol; the engine's counters are read
beside ``targetUrl`` only when no such proxy stands there."""

from __future__ import annotations

import pytest
from modelfleet_api.benchmark import BenchmarkRuntimeConfig, KServeSettings, LoadPoint, Protocol
from modelfleet_serve.bench.point import engine_metrics_url
from modelfleet_serve.bench.protocols.http1 import Http1Pool, with_body
from modelfleet_serve.bench.runner import Target, make_client

pytestmark = pytest.mark.unit

PROXY = "http://keda-add-ons-http-interceptor-proxy.keda:8080"
HOST = "llama.ml.svc.cluster.local"


def test_the_host_header_replaces_the_urls_authority() -> None:
    head = Http1Pool(PROXY, 1, 1.0, HOST).request_head("POST", "/v1/completions", {"A": "b"})
    routed = with_body(head, b"{}")
    assert routed == (
        b"POST /v1/completions HTTP/1.1\r\nHost: llama.ml.svc.cluster.local\r\n"
        b"A: b\r\nContent-Length: 2\r\n\r\n{}"
    )
    direct = with_body(Http1Pool(PROXY, 1, 1.0).request_head("POST", "/v1/completions", {}), b"")
    assert direct.startswith(
        b"POST /v1/completions HTTP/1.1\r\nHost: keda-add-ons-http-interceptor-proxy.keda:8080\r\n"
    )


@pytest.mark.parametrize("protocol", list(Protocol))
def test_every_protocols_client_sends_the_target_host(protocol: Protocol) -> None:
    url = "keda-add-ons-http-interceptor-proxy.keda:8080" if protocol is Protocol.KSERVE_V2_GRPC else PROXY
    target = Target(url, "m", protocol, KServeSettings(), host=HOST)
    client = make_client(
        target, LoadPoint.model_validate({"mode": "closed-loop", "concurrency": 1, "requests": 1})
    )
    assert client.pool.authority == HOST  # type: ignore[attr-defined]


def config(**fields: object) -> BenchmarkRuntimeConfig:
    return BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": PROXY,
            "model": "m",
            "workload": {"synthetic": {"inputTokens": {"mean": 8}, "outputTokens": {"mean": 4}}},
            "load": {"mode": "closed-loop", "concurrency": 1, "requests": 1},
            **fields,
        }
    )


def test_behind_a_routing_proxy_the_engine_counters_are_read_only_where_told() -> None:
    assert engine_metrics_url(config()) == f"{PROXY}/metrics"
    assert engine_metrics_url(config(targetHost=HOST)) is None, (
        "the proxy's own /metrics are not the engine's"
    )
    service = "http://llama.ml.svc.cluster.local:8000/metrics"
    assert engine_metrics_url(config(targetHost=HOST, engineMetricsUrl=service)) == service


@pytest.mark.parametrize("host", ["", "a b", "x/y", "h\r\nX-Injected: 1"])
def test_a_target_host_that_is_not_a_host_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="targetHost"):
        config(targetHost=host)
