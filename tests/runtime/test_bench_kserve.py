"""The KServe v2 (Triton) adapters against the fake server's KServe side (`bench/fake_server.py`,
`bench/fake_grpc.py`, in its own process): non-streaming inference timed against the truth, errors
reported with the server's message, and the fake's gRPC checked against Triton's own client, so that
the streaming accuracy check (test_bench_accuracy) is made against the protocol Triton speaks."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from modelfleet_api.benchmark import BenchmarkRuntimeConfig, KServeSettings
from modelfleet_serve.bench.cli import run_benchmark
from modelfleet_serve.bench.fake_server import running
from modelfleet_serve.bench.protocols.base import ProtocolClient
from modelfleet_serve.bench.protocols.kserve import KServeHttpClient
from modelfleet_serve.bench.protocols.kserve_grpc import KServeGrpcClient
from modelfleet_serve.bench.records import BenchRequest, RequestRecord

pytestmark = pytest.mark.runtime

TTFT_MS, ITL_MS, TOKENS, REQUESTS = 30.0, 5.0, 6, 20
PROMPTS = Path(__file__).parents[2] / "examples" / "bench" / "sharegpt-sample.jsonl"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    with running(TTFT_MS, ITL_MS) as url:
        yield url


@pytest.mark.timing
def test_http_infer_without_streaming_times_the_whole_response(fake_server: str, tmp_path: Path) -> None:
    config = BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": fake_server,
            "model": "fake",
            "protocol": "kserve-v2-http",
            "kserve": {"streaming": False},
            "workload": {"promptsFile": {"uri": str(PROMPTS), "outputTokens": {"mean": TOKENS}}},
            "load": {"mode": "closed-loop", "concurrency": 2, "requests": REQUESTS},
            "outputDir": str(tmp_path),
        }
    )
    summary = run_benchmark(config)[0]["summary"]
    assert summary["completed"] == REQUESTS and summary["errors"] == 0, summary["error_kinds"]
    assert summary["token_count_source"] == {"chunks": REQUESTS}  # the whole text is one chunk
    assert summary["ttft_ms"]["p50"] == pytest.approx(summary["e2e_ms"]["p50"], abs=0.01)
    timings = httpx.get(f"{fake_server}/timings").json()[-REQUESTS:]
    true_e2e = np.array([t["sent"][0] - t["arrived"] for t in timings]) * 1000
    for stat in ("p50", "p99"):
        expected = float(np.percentile(true_e2e, int(stat[1:])))
        assert summary["e2e_ms"][stat] == pytest.approx(expected, abs=1.0), (stat, expected)


def send_one(client: ProtocolClient) -> RequestRecord:
    async def run() -> RequestRecord:
        record = RequestRecord(index=0, warmup=False, scheduled=0.0)
        async with client:
            await client.send(BenchRequest(prompt="Hello there", max_tokens=TOKENS), record)
        return record

    return asyncio.run(run())


def grpc_address(url: str) -> str:
    return url.removeprefix("http://")


@pytest.mark.parametrize(
    ("protocol", "streaming"), [("http", True), ("http", False), ("grpc", True), ("grpc", False)]
)
def test_an_unknown_model_is_an_error_with_the_servers_message(
    fake_server: str, protocol: str, streaming: bool
) -> None:
    settings = KServeSettings(streaming=streaming)
    client: ProtocolClient = (
        KServeHttpClient(fake_server, "missing", settings)
        if protocol == "http"
        else KServeGrpcClient(grpc_address(fake_server), "missing", settings)
    )
    record = send_one(client)
    assert record.error is not None and "unknown model: 'missing'" in record.error
    assert record.chunk_times == [] and record.end >= record.start > 0


def test_a_wrong_tensor_name_is_reported_by_name(fake_server: str) -> None:
    settings = KServeSettings(text_output="output_text", streaming=False)
    record = send_one(KServeHttpClient(fake_server, "fake", settings))
    assert (
        record.error == 'HTTP 400: {"error": "outputs[0].name: unknown output \'output_text\' (text_output)"}'
    )
    record = send_one(
        KServeGrpcClient(grpc_address(fake_server), "fake", KServeSettings(max_tokens="max_len"))
    )
    assert record.error == "Triton: inputs: tensor max_tokens (INT32) is required"


def test_a_grpc_target_must_be_cleartext_host_and_port() -> None:
    with pytest.raises(ValueError, match="targetUrl: a gRPC target is host:port"):
        KServeGrpcClient("https://triton:8001", "fake", KServeSettings())
    with pytest.raises(ValueError, match="targetUrl"):
        KServeGrpcClient("triton", "fake", KServeSettings())


def test_tritons_own_grpc_client_reads_the_fakes_stream(fake_server: str) -> None:
    """The fake answers Triton's client (grpcio underneath) as Triton does: one response per token,
    then the empty final response; a bad request gets an error naming the tensor."""
    client = grpcclient.InferenceServerClient(grpc_address(fake_server))
    results: queue.Queue[tuple[grpcclient.InferResult | None, object]] = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        inputs = []
        for name, value, datatype in (
            ("text_input", np.array([[b"Hello"]], dtype=object), "BYTES"),
            ("max_tokens", np.array([[3]], dtype=np.int32), "INT32"),
            ("stream", np.array([[True]]), "BOOL"),
        ):
            tensor = grpcclient.InferInput(name, list(value.shape), datatype)
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        client.async_stream_infer("fake", inputs, enable_empty_final_response=True)
        responses = [results.get(timeout=10) for _ in range(4)]
        client.async_stream_infer("fake", inputs[:2])
        _, error = results.get(timeout=10)
    finally:
        client.stop_stream()
        client.close()
    assert [e for _, e in responses] == [None] * 4
    texts = [r.as_numpy("text_output") for r, _ in responses if r is not None]
    assert [t.tolist() if t is not None else None for t in texts] == [[[b"tok "]]] * 3 + [None]
    finals = [r.get_response().parameters["triton_final_response"].bool_param for r, _ in responses if r]
    assert finals == [False, False, False, True]
    assert "inputs: tensor stream (BOOL) is required" in str(error)
