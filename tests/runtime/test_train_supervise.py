"""The worker container's supervisor around a real torchrun: a failed run leaves its story (the
termination message the kubelet reads, bounded to its 4 KiB, and the pod's whole log beside the
checkpoints, on a path and in blob storage), and a SIGTERM reaches the training processes, which save a
checkpoint and say so."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api import contract
from modelfleet_api.trainingjob import TERMINATION_MESSAGE_MAX
from modelfleet_train import storage
from modelfleet_train.failures import LOG_MARKER

from tests.runtime.conftest import VENV_BIN, TinyAssets, runtime_config, runtime_env, write_config

pytestmark = pytest.mark.runtime

POD = "tiny-0-x7k2p"


def supervised(config: dict[str, Any], work: Path, *, attempt: int = 0) -> subprocess.Popen[str]:
    """The pod's command, as the operator renders it, on two local processes."""
    work.mkdir(parents=True, exist_ok=True)
    config_file = write_config(config, work / "config.yaml")
    env = runtime_env(work) | {
        contract.ENV_POD_NAME: POD,
        contract.ENV_RESTART_ATTEMPT: str(attempt),
        contract.ENV_TERMINATION_LOG: str(work / "termination-log"),
        contract.ENV_TORCH_SHUTDOWN_TIMEOUT: "60",
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
    }
    command = [
        str(VENV_BIN / "python"), "-m", contract.SUPERVISOR_MODULE, "--",
        "torchrun", "--standalone", "--nproc-per-node=2",
        "-m", "modelfleet_train", "--config", str(config_file),
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def finish(process: subprocess.Popen[str], timeout: float = 400) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return output


def test_a_failed_run_writes_the_root_cause_and_its_last_log_lines_and_keeps_its_log(
    tiny: TinyAssets, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-data.jsonl"
    config = runtime_config(
        tiny,
        tmp_path / "out",
        dataset={"uri": str(missing), "format": "jsonl"},
        checkpoint={"uri": str(tmp_path / "ckpt"), "intervalSteps": 100},
    )
    process = supervised(config, tmp_path / "work", attempt=2)

    output = finish(process)

    assert process.returncode == 1, output[-4000:]
    message = (tmp_path / "work" / "termination-log").read_text()
    assert len(message.encode()) <= TERMINATION_MESSAGE_MAX
    head, _, tail = message.partition(f"\n{LOG_MARKER}\n")
    first, exit_line = head.splitlines()
    assert first.startswith(f"FileNotFoundError: dataset.uri: {missing} does not exist (rank ")
    assert exit_line == "exit code 1"
    assert tail and tail.splitlines()[-1] in output  # the newest lines, as the pod's log shows them
    saved = (tmp_path / "ckpt" / "logs" / "attempt-2" / f"{POD}.log").read_text()
    assert "FileNotFoundError" in saved and saved.strip() in output


def test_sigterm_reaches_the_ranks_which_checkpoint_and_the_message_says_so(
    tiny: TinyAssets, tmp_path: Path
) -> None:
    config = runtime_config(
        tiny,
        tmp_path / "out",
        hyperparameters={
            "learningRate": 3e-3,
            "maxSteps": 400,
            "perDeviceBatchSize": 2,
            "sequenceLength": 32,
        },
        checkpoint={"uri": str(tmp_path / "ckpt"), "intervalSteps": 1000},
    )
    process = supervised(config, tmp_path / "work")
    log = tmp_path / "ckpt" / "logs" / "attempt-0" / f"{POD}.log"
    deadline = time.monotonic() + 300
    while "step 3/400" not in (log.read_text() if log.exists() else ""):
        assert process.poll() is None and time.monotonic() < deadline, finish(process)[-4000:]
        time.sleep(0.5)

    process.send_signal(signal.SIGTERM)  # what the kubelet sends the container's first process
    output = finish(process)

    assert process.returncode != 0
    stopped = [line for line in output.splitlines() if "after a SIGTERM; checkpoint saved" in line]
    assert stopped, output[-4000:]
    step = int(stopped[0].split("stopped at step ")[1].split()[0])
    assert (tmp_path / "ckpt" / "latest").read_text() == str(step)
    message = (tmp_path / "work" / "termination-log").read_text()
    assert message.startswith("Stopped by SIGTERM\nexit code ")
    assert stopped[0] in message


def test_a_pods_log_goes_to_an_append_blob(
    azurite: str, monkeypatch: pytest.MonkeyPatch, tiny: TinyAssets, tmp_path: Path
) -> None:
    monkeypatch.setenv(storage.ENV_CONNECTION_STRING, azurite)
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite)
    if not service.get_container_client("runs").exists():
        service.create_container("runs")
    config = runtime_config(
        tiny,
        tmp_path / "out",
        dataset={"uri": str(tmp_path / "missing.jsonl"), "format": "jsonl"},
        checkpoint={"uri": "az://runs/supervised/checkpoints", "intervalSteps": 100},
    )

    output = finish(supervised(config, tmp_path / "work", attempt=1))

    blob = service.get_blob_client("runs", f"supervised/checkpoints/logs/attempt-1/{POD}.log")
    properties = blob.get_blob_properties()
    assert properties.blob_type == "AppendBlob"
    saved = blob.download_blob().readall().decode()
    assert "FileNotFoundError" in saved and saved.strip() in output
