"""Shared fixtures of the training-runtime tests: one tiny model, tokenizer and data set per session,
and a helper that runs `torchrun -m modelfleet_train` on a config the way a worker pod does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import tinymodel

VENV_BIN = Path(sys.executable).parent
TORCH_EXTENSIONS = Path.home() / ".cache" / "modelfleet" / "torch_extensions"
"""DeepSpeed's JIT-compiled ops: shared across runs so only the first compiles (about 40 s)."""


@dataclass(frozen=True)
class TinyAssets:
    model: Path
    instructions: Path
    chat: Path
    pretrain: Path
    preferences: Path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyAssets:
    root = tmp_path_factory.mktemp("tiny")
    tokenizer = tinymodel.train_tokenizer()
    tinymodel.make_model(tokenizer, root / "model")
    return TinyAssets(
        model=root / "model",
        instructions=tinymodel.write_jsonl(root / "instructions.jsonl", tinymodel.instruction_rows(256)),
        chat=tinymodel.write_jsonl(root / "chat.jsonl", tinymodel.chat_rows(128)),
        pretrain=tinymodel.write_jsonl(root / "pretrain.jsonl", tinymodel.pretrain_rows(256)),
        preferences=tinymodel.write_jsonl(root / "preferences.jsonl", tinymodel.dpo_rows(128)),
    )


def runtime_config(tiny: TinyAssets, output: Path, **sections: Any) -> dict[str, Any]:
    """A small runtime config in wire form (camelCase); `sections` replace or extend top-level keys."""
    config: dict[str, Any] = {
        "job": {"name": "tiny", "namespace": "test", "uid": "uid-1"},
        "model": {"uri": str(tiny.model)},
        "dataset": {"uri": str(tiny.instructions), "format": "jsonl"},
        "method": {"type": "full"},
        "strategy": {"type": "ddp"},
        "precision": "fp32",
        "hyperparameters": {
            "learningRate": 3e-3,
            "lrSchedule": "cosine",
            "maxSteps": 8,
            "perDeviceBatchSize": 4,
            "gradientAccumulationSteps": 2,
            "sequenceLength": 64,
            "seed": 7,
        },
        "checkpoint": {"intervalSteps": 100, "keepLast": 2},
        "output": {"uri": str(output)},
        "topology": {"nodes": 1, "gpusPerNode": 2},
    }
    config.update(sections)
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def runtime_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELFLEET_", "PET_", "POD_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HOME=str(work / "hf"),
        MODELFLEET_CACHE_DIR=str(work / "cache"),
        MODELFLEET_METRICS_PORT=str(free_port()),
        TORCH_EXTENSIONS_DIR=str(TORCH_EXTENSIONS),
        DS_ACCELERATOR="cpu",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def torchrun_command(config_file: Path, nproc: int) -> list[str]:
    return [
        str(VENV_BIN / "torchrun"),
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "modelfleet_train",
        "--config",
        str(config_file),
    ]


def write_config(config: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_training(config: dict[str, Any], work: Path, nproc: int = 2) -> subprocess.Popen[str]:
    work.mkdir(parents=True, exist_ok=True)
    config_file = write_config(config, work / f"config-{len(list(work.glob('config-*')))}.yaml")
    return subprocess.Popen(
        torchrun_command(config_file, nproc),
        env=runtime_env(work),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def run_training(config: dict[str, Any], work: Path, nproc: int = 2, timeout: float = 540) -> str:
    """Run to the end; returns the combined log and fails the test with it on a non-zero exit."""
    process = start_training(config, work, nproc)
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    assert process.returncode == 0, f"training exited {process.returncode}:\n{output[-6000:]}"
    return output


def step_losses(output_dir: Path) -> dict[int, float]:
    """Step -> loss from the run's JSON-lines metrics (every run appends, so a resume continues it)."""
    lines = (output_dir / "training_metrics.jsonl").read_text().splitlines()
    return {row["step"]: row["loss"] for row in map(json.loads, lines) if row["event"] == "step"}
