"""The KServe v2 (Triton) adapter against test doubles of Triton's gRPC streaming and HTTP
`generate_stream`/`infer` endpoints, with known latencies."""

from __future__ import annotations

import json
import struct
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import pytest
from modelfleet_api.benchmark import BenchmarkRuntimeConfig
from modelfleet_serve.bench.cli import run_benchmark
from tritonclient.grpc import service_pb2, service_pb2_grpc

pytestmark = [pytest.mark.runtime, pytest.mark.timing]

TTFT_S, ITL_S, TOKENS = 0.030, 0.005, 6
PROMPTS = Path(__file__).parents[2] / "examples" / "bench" / "sharegpt-sample.jsonl"


def inputs_of(request: service_pb2.ModelInferRequest) -> dict[str, bytes]:
    return {tensor.name: raw for tensor, raw in zip(request.inputs, request.raw_input_contents, strict=True)}


class FakeTriton(service_pb2_grpc.GRPCInferenceServiceServicer):
    """Decoupled TensorRT-LLM-like model: one response per token, then an empty final response."""

    def ModelStreamInfer(self, request_iterator, context):  # type: ignore[no-untyped-def]
        for request in request_iterator:
            tensors = inputs_of(request)
            assert struct.unpack("<I", tensors["text_input"][:4])[0] > 0 and tensors["stream"] == b"\x01"
            tokens = int(np.frombuffer(tensors["max_tokens"], dtype=np.int32)[0])
            first = time.perf_counter() + TTFT_S
            for k in range(tokens):
                time.sleep(max(0.0, first + k * ITL_S - time.perf_counter()))
                yield self.response(request, b"tok ", final=False)
            yield self.response(request, None, final=True)

    @staticmethod
    def response(request: service_pb2.ModelInferRequest, text: bytes | None, final: bool):  # type: ignore[no-untyped-def]
        reply = service_pb2.ModelInferResponse(model_name=request.model_name, id=request.id)
        reply.parameters["triton_final_response"].bool_param = final
        if text is not None:
            reply.outputs.add(name="text_output", datatype="BYTES", shape=[1, 1])
            reply.raw_output_contents.append(struct.pack("<I", len(text)) + text)
        return service_pb2.ModelStreamInferResponse(infer_response=reply)


class FakeTritonHttp(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v2/models/ensemble/generate_stream":
            assert body["stream"] is True and body["text_input"]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            first = time.perf_counter() + TTFT_S
            for k in range(body["max_tokens"]):
                time.sleep(max(0.0, first + k * ITL_S - time.perf_counter()))
                self.chunk(b'data: {"model_name": "ensemble", "text_output": "tok "}\n\n')
            self.chunk(b"")
        elif self.path == "/v2/models/ensemble/infer":
            tokens = next(i["data"][0] for i in body["inputs"] if i["name"] == "max_tokens")
            time.sleep(TTFT_S + (tokens - 1) * ITL_S)
            output = {"name": "text_output", "datatype": "BYTES", "shape": [1, 1], "data": ["tok " * tokens]}
            payload = json.dumps({"model_name": "ensemble", "outputs": [output]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        else:
            self.send_error(404)

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@pytest.fixture(scope="module")
def grpc_target() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(FakeTriton(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@pytest.fixture(scope="module")
def http_target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTritonHttp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def bench(url: str, protocol: str, tmp_path: Path, streaming: bool = True) -> dict:
    config = BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": url,
            "model": "ensemble",
            "protocol": protocol,
            "kserve": {"streaming": streaming},
            "workload": {"promptsFile": {"uri": str(PROMPTS), "outputTokens": {"mean": TOKENS}}},
            "load": {"mode": "closed-loop", "concurrency": 2, "requests": 8},
            "outputDir": str(tmp_path),
        }
    )
    summary = run_benchmark(config)[0]["summary"]
    assert summary["completed"] == 8 and summary["errors"] == 0, summary["error_kinds"]
    assert summary["token_count_source"] == {"chunks": 8}  # no usage in KServe v2, no tokenizer given
    return summary


@pytest.mark.parametrize("target", ["grpc", "http"])
def test_streaming_latencies(target: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue(f"{target}_target")
    summary = bench(url, f"kserve-v2-{target}", tmp_path)
    assert summary["output_tokens_total"] == 8 * TOKENS  # one token per streamed response
    # The doubles share the test's process (and GIL) with the client, so their timing is loose:
    # bounds here; the calibrated accuracy check is test_bench_accuracy.
    assert TTFT_S * 1000 <= summary["ttft_ms"]["p50"] < TTFT_S * 1000 + 25
    assert summary["itl_ms"]["p50"] > 0 and summary["tpot_ms"]["p50"] > 0
    assert summary["e2e_ms"]["p50"] >= (TTFT_S + (TOKENS - 1) * ITL_S) * 1000


def test_http_without_streaming_has_ttft_equal_to_e2e(http_target: str, tmp_path: Path) -> None:
    summary = bench(http_target, "kserve-v2-http", tmp_path, streaming=False)
    assert summary["ttft_ms"]["p50"] == pytest.approx(summary["e2e_ms"]["p50"], abs=0.01)
