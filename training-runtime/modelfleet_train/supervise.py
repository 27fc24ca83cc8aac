"""The worker container's first process: runs the launcher and keeps the pod's story.

``python -m modelfleet_train.supervise -- torchrun -m modelfleet_train --config ...`` starts the launcher
(torchrun or `accelerate launch`) with its output piped through this process, which

- passes SIGTERM and SIGINT on (a drain, an eviction: the launcher gives its processes the time to save a
  checkpoint), and exits with the launcher's exit code;
- copies every byte of output to its own stdout (``kubectl logs`` shows what it always did) and to the
  log of this pod beside the checkpoints, ``<checkpoint URI>/logs/attempt-N/<pod>.log``: written as it
  comes on a PVC or local path, appended every few seconds to an append blob in blob storage. A gang
  restart deletes the pods, never these files. A sink that fails is dropped with a warning: the log never
  stops training;
- when the launcher exits non-zero, writes the termination message (``failures``): the error a training
  process reported first, the exit code and the last log lines, which the operator shows in the
  TrainingJob's status and an event.

Hand-written because torchrun's own ``--tee``/``--log-dir`` keep per-rank files inside the pod, which a
restart deletes, and nothing in it writes a termination message.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import BinaryIO, Protocol

from modelfleet_api import contract
from modelfleet_api.first_process import shell_exit_code, terminate_on_signals
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.training import attempt_logs_location

from modelfleet_train import storage
from modelfleet_train.failures import read_rank_failures, termination_message

TAIL_LINES = 200
"""Lines kept for the termination message (it holds as many of the newest as fit in 4 KiB)."""
BLOB_FLUSH_SECONDS = 10.0
BLOB_FLUSH_BYTES = 1 << 20
APPEND_BLOCK_MAX = 4 << 20
"""Largest block one append takes (Azure's limit for append blobs, 4 MiB with older service versions)."""
FORWARDED = (signal.SIGTERM, signal.SIGINT)


class LogSink(Protocol):
    def write(self, data: bytes) -> None: ...

    def flush(self, *, final: bool = False) -> None: ...


class FileSink:
    """The pod's log on a PVC or local path, written as it comes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: BinaryIO = path.open("ab")

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()

    def flush(self, *, final: bool = False) -> None:
        if final:
            self._file.close()


class BlobSink:
    """The pod's log as an append blob, appended in blocks every ``BLOB_FLUSH_SECONDS``."""

    def __init__(self, location: storage.BlobLocation) -> None:
        self._client = storage.container_client(location).get_blob_client(location.prefix)
        self._client.create_append_blob()
        self._buffer = bytearray()
        self._flushed = time.monotonic()

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= BLOB_FLUSH_BYTES:
            self.flush()

    def flush(self, *, final: bool = False) -> None:
        due = (
            final
            or len(self._buffer) >= BLOB_FLUSH_BYTES
            or time.monotonic() - self._flushed >= BLOB_FLUSH_SECONDS
        )
        if not self._buffer or not due:
            return
        while self._buffer:
            block, self._buffer = bytes(self._buffer[:APPEND_BLOCK_MAX]), self._buffer[APPEND_BLOCK_MAX:]
            self._client.append_block(block)
        self._flushed = time.monotonic()


def pod_log_uri(config: TrainingRuntimeConfig, attempt: int, pod: str) -> str:
    return f"{attempt_logs_location(config.checkpoint, config.output, attempt)}/{pod}.log"


def open_sink(uri: str) -> LogSink:
    if storage.is_blob_uri(uri):
        return BlobSink(storage.blob_location(uri))
    return FileSink(storage.local_path(uri))


class Supervisor:
    def __init__(self, command: Sequence[str], sink: LogSink | None, run_dir: Path) -> None:
        self.command = list(command)
        self.sink = sink
        self.run_dir = run_dir
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.signalled: str | None = None
        self._partial = b""
        self._child: subprocess.Popen[bytes] | None = None

    def run(self) -> int:
        env = {**os.environ, contract.ENV_RUN_DIR: str(self.run_dir)}
        self._child = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        for sig in FORWARDED:
            signal.signal(sig, self._forward)
        assert self._child.stdout is not None
        fd = self._child.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], BLOB_FLUSH_SECONDS)
            if not ready:
                self._to_sink(None)
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            self._out(data)
        code = shell_exit_code(self._child.wait())  # 143, not 241, for a launcher killed by SIGTERM
        if self._partial:
            self.tail.append(self._partial.decode(errors="replace"))
        self._to_sink(None, final=True)
        if code != 0:
            self._write_termination_message(code)
        return code

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = signal.Signals(signum).name
        if self._child is not None and self._child.poll() is None:
            self._child.send_signal(signum)

    def _out(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        self.tail.extend(line.decode(errors="replace") for line in lines)
        self._to_sink(data)

    def _to_sink(self, data: bytes | None, *, final: bool = False) -> None:
        if self.sink is None:
            return
        try:
            if data is not None:
                self.sink.write(data)
            self.sink.flush(final=final)
        except Exception as error:  # a log that cannot be saved must not stop training
            self.sink = None
            self._out(
                f"modelfleet supervisor: saving the pod's log failed, no longer saving it: {error}\n".encode()
            )

    def _write_termination_message(self, code: int) -> None:
        message = termination_message(
            exit_code=code,
            failures=read_rank_failures(self.run_dir),
            log_lines=list(self.tail),
            stopped_by=self.signalled,
        )
        path = Path(os.environ.get(contract.ENV_TERMINATION_LOG, contract.TERMINATION_LOG))
        try:
            path.write_text(message)
        except OSError as error:
            sys.stderr.write(
                f"modelfleet supervisor: cannot write the termination message to {path}: {error}\n"
            )


def _sink_for(config_path: str | None) -> LogSink | None:
    """The sink of this pod's log, or None (with the reason on stderr) when there is none."""
    path = config_path or os.environ.get(contract.ENV_CONFIG)
    if not path:
        return None
    try:
        config = TrainingRuntimeConfig.load(path)
        attempt = int(os.environ.get(contract.ENV_RESTART_ATTEMPT, "0"))
        pod = os.environ.get(contract.ENV_POD_NAME) or socket.gethostname()
        uri = pod_log_uri(config, attempt, pod)
        sink = open_sink(uri)
    except Exception as error:  # never fatal: the training still runs, its log only in the pod
        sys.stderr.write(
            f"modelfleet supervisor: not saving this pod's log beside the checkpoints: {error}\n"
        )
        return None
    sys.stderr.write(f"modelfleet supervisor: this pod's log is saved to {uri}\n")
    return sink


def _config_arg(command: Sequence[str]) -> str | None:
    for index, arg in enumerate(command):
        if arg == "--config" and index + 1 < len(command):
            return command[index + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    # The worker container's first process: until `run` forwards them to the launcher, SIGTERM and
    # SIGINT end it, also as PID 1, where the kernel drops them otherwise (modelfleet_api.first_process).
    terminate_on_signals()
    command = list(sys.argv[1:] if argv is None else argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        sys.stderr.write("usage: python -m modelfleet_train.supervise -- LAUNCHER ARGS...\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="modelfleet-run-") as run_dir:
        return Supervisor(command, _sink_for(_config_arg(command)), Path(run_dir)).run()


if __name__ == "__main__":
    raise SystemExit(main())
