"""Triton's KServe v2 protocol over gRPC for TensorRT-LLM models: one `ModelStreamInfer` call per
request (the decoupled model streams one response per token), sent through `http2` so that, as on the
HTTP path, the request is encoded before the clock starts and every response's arrival is the kernel's
receive stamp of the read that completed its gRPC message. The messages are Triton's own protobufs
(`tritonclient.grpc.service_pb2`); `tritonclient`'s client itself is not used (see `http2` for why).

The request half-closes the stream after its one message and asks for Triton's empty final response
(`triton_enable_empty_final_response`): `end` is the arrival of the response flagged
`triton_final_response`, or of the stream's end when a server sends no such flag.

Precision is that of the HTTP path (against the fake server: client `start` to server arrival 0.02 ms,
server transmit to client arrival 0.004 ms at p50), with the same limit: messages the kernel received
before the client read them share the newest one's stamp. One case is more common here: a server that
sends the empty final response right after the last token (an ensemble or Python-backend model; the
TensorRT-LLM backend flags its last response instead) gives a client that wakes later than that gap the
final response's stamp for the last token: late by the gap (against the fake server, which sends it
0.15-0.2 ms later, the last token was 0.3 ms late at p50; TPOT moves by that over N - 1 tokens).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from urllib.parse import urlsplit

from modelfleet_api.benchmark import KServeSettings
from modelfleet_serve.bench.protocols.base import ProtocolClient
from modelfleet_serve.bench.protocols.http2 import Http2Pool, Http2Request
from modelfleet_serve.bench.protocols.pool import Response
from modelfleet_serve.bench.protocols.recorded import exchange_into
from modelfleet_serve.bench.records import BenchRequest, RequestRecord
from tritonclient.grpc import service_pb2

STREAM_INFER_PATH = "/inference.GRPCInferenceService/ModelStreamInfer"
FINAL_RESPONSE = "triton_final_response"
ENABLE_FINAL_RESPONSE = "triton_enable_empty_final_response"
_LENGTH = struct.Struct("<I")
_PREFIX = struct.Struct(">?I")  # gRPC message prefix: compressed flag, big-endian length


def grpc_message(payload: bytes) -> bytes:
    return _PREFIX.pack(False, len(payload)) + payload


def grpc_messages(pieces: list[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """(arrival, payload) of every gRPC message, arrival being that of the read that completed it."""
    buffer = bytearray()
    for arrived, piece in pieces:
        buffer += piece
        while len(buffer) >= _PREFIX.size:
            compressed, length = _PREFIX.unpack_from(buffer)
            if len(buffer) < _PREFIX.size + length:
                break
            if compressed:
                raise ValueError("a compressed gRPC message (the client accepts none)")
            yield arrived, bytes(buffer[_PREFIX.size : _PREFIX.size + length])
            del buffer[: _PREFIX.size + length]
    if buffer:
        raise ValueError("the gRPC stream ended inside a message")


def bytes_tensor(value: bytes) -> bytes:
    """One element of a BYTES tensor in Triton's raw form: a little-endian uint32 length, the bytes."""
    return _LENGTH.pack(len(value)) + value


def bytes_tensor_text(raw: bytes) -> str:
    """The elements of a raw BYTES tensor, decoded and joined."""
    parts, offset = [], 0
    while offset < len(raw):
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            raise ValueError("a BYTES tensor element runs past the tensor's end")
        parts.append(raw[offset : offset + length].decode("utf-8", "replace"))
        offset += length
    return "".join(parts)


def response_text(response: service_pb2.ModelInferResponse, name: str) -> str:
    for index, output in enumerate(response.outputs):
        if output.name != name:
            continue
        if index < len(response.raw_output_contents):
            return bytes_tensor_text(response.raw_output_contents[index])
        return "".join(v.decode("utf-8", "replace") for v in output.contents.bytes_contents)
    return ""


class KServeGrpcClient(ProtocolClient):
    def __init__(
        self,
        url: str,
        model: str,
        settings: KServeSettings,
        *,
        max_connections: int = 1024,
        timeout_seconds: float = 600.0,
        host: str | None = None,
    ) -> None:
        address = urlsplit(url if "://" in url else f"grpc://{url}")
        if address.scheme not in ("grpc", "http") or not address.port:
            raise ValueError(
                f"targetUrl: a gRPC target is host:port (or grpc://host:port, no TLS), got {url}"
            )
        self.pool = Http2Pool(f"http://{address.netloc}", max_connections, timeout_seconds, host)
        self.model, self.names = model, settings
        self.headers = (
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("user-agent", "modelfleet-bench"),
        )

    def message(self, request: BenchRequest) -> bytes:
        names = self.names
        infer = service_pb2.ModelInferRequest(model_name=self.model)
        infer.parameters[ENABLE_FINAL_RESPONSE].bool_param = True
        tensors = (
            (names.text_input, "BYTES", bytes_tensor(request.prompt.encode())),
            (names.max_tokens, "INT32", struct.pack("<i", request.max_tokens)),
            (names.stream, "BOOL", struct.pack("<?", names.streaming)),
        )
        for name, datatype, raw in tensors:
            infer.inputs.add(name=name, datatype=datatype, shape=[1, 1])
            infer.raw_input_contents.append(raw)
        return grpc_message(infer.SerializeToString())

    async def send(self, request: BenchRequest, record: RequestRecord) -> None:
        encoded = Http2Request(STREAM_INFER_PATH, self.headers, self.message(request))
        await exchange_into(self.pool, encoded, record, self.parse)

    def parse(self, response: Response, record: RequestRecord) -> None:
        if response.status != 200:
            record.error = f"HTTP {response.status} from the gRPC endpoint"
            return
        status = response.headers.get("grpc-status")
        if status is None:
            raise ValueError("the gRPC response ended without a grpc-status")
        if status != "0":
            record.error = f"gRPC status {status}: {response.headers.get('grpc-message', '')}"
            return
        name = self.names.text_output
        for arrived, payload in grpc_messages(response.pieces):
            message = service_pb2.ModelStreamInferResponse.FromString(payload)
            if message.error_message:
                record.error = f"Triton: {message.error_message}"
                return
            text = response_text(message.infer_response, name)
            if text:
                record.chunk_times.append(arrived)
                record.text_parts.append(text)
            parameters = message.infer_response.parameters
            if FINAL_RESPONSE in parameters and parameters[FINAL_RESPONSE].bool_param:
                record.end = arrived
                return

    async def close(self) -> None:
        await self.pool.close()
