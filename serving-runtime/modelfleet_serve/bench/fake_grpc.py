"""The fake server's gRPC side: Triton's `GRPCInferenceService/ModelStreamInfer` for a decoupled
TensorRT-LLM-like model, over HTTP/2 on the fake server's own sockets.

Not grpcio's server: it writes from its C core's threads, so the fake could not know when a response
really left; here every response message goes out in one `send` whose kernel transmit stamp is the
recorded truth, as on the HTTP side. HTTP/2 comes from `h2`, the messages are Triton's protobufs and
the BYTES tensors are decoded by `tritonclient.utils`, independently of the benchmark client's codec.
Like Triton: one response per token (`text_output`, BYTES [1, 1]); when the request sets
`triton_enable_empty_final_response`, every response carries `triton_final_response` (false) and an
empty final one (true) follows; a bad request gets an `error_message` naming the tensor; the call
ends with `grpc-status: 0` once the client half-closed and every request is answered.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import TYPE_CHECKING

import h2.config
import h2.connection
import h2.events
import numpy as np
from tritonclient.grpc import service_pb2
from tritonclient.utils import deserialize_bytes_tensor

from modelfleet_serve.bench.fake_wire import Stream, read

if TYPE_CHECKING:
    from modelfleet_serve.bench.fake_server import FakeServer

STREAM_INFER_PATH = "/inference.GRPCInferenceService/ModelStreamInfer"
FINAL_RESPONSE = "triton_final_response"
ENABLE_FINAL_RESPONSE = "triton_enable_empty_final_response"
_PREFIX = struct.Struct(">?I")
TOKEN_TEXT = b"tok "


class GrpcConnection:
    def __init__(
        self, server: FakeServer, loop: asyncio.AbstractEventLoop, sock: socket.socket, stream: Stream
    ) -> None:
        self.server, self.loop, self.sock, self.stream = server, loop, sock, stream
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.lock = asyncio.Lock()
        """Held around each write, so a response message is one `send` with its own transmit stamp."""
        self.window = asyncio.Event()
        self.calls: dict[int, tuple[bytearray, asyncio.Queue[tuple[float, bytes] | None]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self, data: bytes, arrived: float) -> None:
        """Serve the connection, starting with its first read (`data`, which holds the preface)."""
        self.h2.initiate_connection()
        try:
            while True:
                for event in self.h2.receive_data(data):
                    self.event(event, arrived)
                await self.write()
                data, arrived = await read(self.loop, self.sock)
        finally:
            for task in self.tasks:
                task.cancel()

    def event(self, event: h2.events.Event, arrived: float) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = dict((str(k), str(v)) for k, v in event.headers)
            queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
            self.calls[event.stream_id] = (bytearray(), queue)
            task = self.loop.create_task(self.call(event.stream_id, headers, queue))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif isinstance(event, h2.events.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            buffer, queue = self.calls[event.stream_id]
            buffer += event.data
            while (
                len(buffer) >= _PREFIX.size and len(buffer) >= _PREFIX.size + _PREFIX.unpack_from(buffer)[1]
            ):
                _, length = _PREFIX.unpack_from(buffer)
                queue.put_nowait((arrived, bytes(buffer[_PREFIX.size : _PREFIX.size + length])))
                del buffer[: _PREFIX.size + length]
        elif isinstance(event, h2.events.StreamEnded):
            self.calls[event.stream_id][1].put_nowait(None)
        elif isinstance(event, h2.events.WindowUpdated):
            self.window.set()

    async def write(self, sent: list[float] | None = None, k: int = 0) -> None:
        """Send what h2 has queued; with `sent`, its transmit stamp becomes `sent[k]`."""
        async with self.lock:
            data = self.h2.data_to_send()
            if not data:
                return
            if sent is not None:
                self.stream.stamp_into(sent, k)
            await self.stream.send(self.loop, data)
            self.stream.settle()

    async def message(
        self, stream_id: int, frame: bytes, sent: list[float] | None = None, k: int = 0
    ) -> None:
        """Send one framed gRPC message on the stream, waiting for flow-control credit."""
        while self.h2.local_flow_control_window(stream_id) < len(frame):
            self.window.clear()
            await self.window.wait()
        self.h2.send_data(stream_id, frame)
        await self.write(sent, k)

    async def call(
        self, stream_id: int, headers: dict[str, str], queue: asyncio.Queue[tuple[float, bytes] | None]
    ) -> None:
        problem = check_headers(headers)
        if problem is not None:
            status, text = problem
            trailers_only = [(":status", "200"), ("content-type", "application/grpc")]
            trailers_only += [("grpc-status", status), ("grpc-message", text)]
            self.h2.send_headers(stream_id, trailers_only, end_stream=True)
            await self.write()
            return
        self.h2.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
        await self.write()
        while (item := await queue.get()) is not None:
            arrived, payload = item
            await self.answer(stream_id, arrived, service_pb2.ModelInferRequest.FromString(payload))
        self.h2.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
        await self.write()

    async def answer(self, stream_id: int, arrived: float, request: service_pb2.ModelInferRequest) -> None:
        def reply(text: bytes | None, final: bool) -> service_pb2.ModelStreamInferResponse:
            response = service_pb2.ModelInferResponse(
                model_name=request.model_name, model_version="1", id=request.id
            )
            if flagged:
                response.parameters[FINAL_RESPONSE].bool_param = final
            if text is not None:
                response.outputs.add(name="text_output", datatype="BYTES", shape=[1, 1])
                response.raw_output_contents.append(struct.pack("<I", len(text)) + text)
            return service_pb2.ModelStreamInferResponse(infer_response=response)

        try:
            tokens = self.check_request(request)
        except ValueError as error:
            await self.message(
                stream_id, framed(service_pb2.ModelStreamInferResponse(error_message=str(error)))
            )
            return
        parameter = request.parameters.get(ENABLE_FINAL_RESPONSE)
        flagged = parameter is not None and parameter.bool_param
        # built before the first token is due, so the final response follows the last token as closely
        # as Triton's does (a client's read that catches both stamps the token with the later arrival)
        token, final = framed(reply(TOKEN_TEXT, final=False)), framed(reply(None, final=True))

        async def send(sent: list[float], k: int) -> None:
            await self.message(stream_id, token, sent=sent, k=k)

        await self.server.pace(arrived, tokens, send)
        if flagged:
            await self.message(stream_id, final)

    def check_request(self, request: service_pb2.ModelInferRequest) -> int:
        """The requested output tokens; a ValueError naming the tensor when the request is not one a
        TensorRT-LLM model takes."""
        if request.model_name != self.server.model:
            raise ValueError(f"Request for unknown model: '{request.model_name}' is not found")
        if len(request.raw_input_contents) != len(request.inputs):
            raise ValueError("raw_input_contents: one entry per input tensor is required")
        tensors = {
            t.name: (t, raw) for t, raw in zip(request.inputs, request.raw_input_contents, strict=True)
        }
        expected = {"text_input": "BYTES", "max_tokens": "INT32", "stream": "BOOL"}
        for name, datatype in expected.items():
            if name not in tensors or tensors[name][0].datatype != datatype:
                raise ValueError(f"inputs: tensor {name} ({datatype}) is required")
            if list(tensors[name][0].shape) != [1, 1]:
                raise ValueError(f"inputs.{name}.shape: [1, 1] expected, got {list(tensors[name][0].shape)}")
        prompt = deserialize_bytes_tensor(tensors["text_input"][1])
        if prompt.size != 1 or not prompt[0]:
            raise ValueError("inputs.text_input: one non-empty prompt is required")
        if tensors["stream"][1] != b"\x01":
            raise ValueError("inputs.stream: must be true (the model is decoupled)")
        tokens = int(np.frombuffer(tensors["max_tokens"][1], dtype="<i4")[0])
        if tokens < 1:
            raise ValueError(f"inputs.max_tokens: a positive count is required, got {tokens}")
        return tokens


def framed(reply: service_pb2.ModelStreamInferResponse) -> bytes:
    payload: bytes = reply.SerializeToString()
    return _PREFIX.pack(False, len(payload)) + payload


def check_headers(headers: dict[str, str]) -> tuple[str, str] | None:
    """(grpc-status, message) for a call a gRPC server would refuse: what grpcio insists on."""
    if headers.get(":path") != STREAM_INFER_PATH:
        return "12", f"unimplemented method {headers.get(':path')} (only {STREAM_INFER_PATH})"
    if headers.get(":method") != "POST" or not headers.get("content-type", "").startswith("application/grpc"):
        return "3", "a gRPC call is a POST with content-type application/grpc"
    if headers.get("te") != "trailers":
        return "3", "te: trailers is required"
    return None
