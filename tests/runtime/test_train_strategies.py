"""FSDP2 and DeepSpeed ZeRO-2/3, two processes each on gloo, loss going down.

DDP is covered with checkpoint/resume in test_train_ddp.py. The FSDP run also exercises bf16
mixed precision, chat data with packing and gradient checkpointing; ZeRO-3 also exports its
partitioned weights as a normal transformers checkpoint.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import TinyAssets, run_training, runtime_config, step_losses

pytestmark = pytest.mark.runtime

STEPS = 12


def assert_learns(output: Path) -> None:
    losses = step_losses(output)
    assert sorted(losses) == list(range(1, STEPS + 1))
    first, last = (
        sum(losses[s] for s in (1, 2, 3)) / 3,
        sum(losses[s] for s in range(STEPS - 2, STEPS + 1)) / 3,
    )
    assert last < 0.85 * first, losses


def config(
    tiny: TinyAssets, output: Path, hyperparameters: dict[str, Any] | None = None, **sections: Any
) -> dict[str, Any]:
    """The shared tiny config for STEPS steps; `hyperparameters` are merged into its own."""
    base = runtime_config(tiny, output, **sections)
    base["hyperparameters"].update(maxSteps=STEPS, **(hyperparameters or {}))
    return base


def test_fsdp2_bf16_packed_chat_with_gradient_checkpointing(tiny: TinyAssets, tmp_path: Path) -> None:
    log = run_training(
        config(
            tiny,
            tmp_path / "out",
            strategy={"type": "fsdp", "fsdp": {"reshardAfterForward": True}},
            precision="bf16",
            dataset={
                "uri": str(tiny.chat),
                "format": "jsonl",
                "fields": {"messages": "messages"},
                "packing": True,
            },
            hyperparameters={"sequenceLength": 128, "perDeviceBatchSize": 2, "gradientCheckpointing": True},
        ),
        tmp_path,
    )
    assert_learns(tmp_path / "out")
    assert "rank1 INFO modelfleet_train.model_init: rank 1: model on meta, weights from rank 0" in log
    from transformers import AutoModelForCausalLM

    # the checkpoint wrappers must not leak into the exported weights' names
    _, loading = AutoModelForCausalLM.from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not loading["missing_keys"] and not loading["unexpected_keys"], loading


def test_deepspeed_zero2_logs_its_merged_config(tiny: TinyAssets, tmp_path: Path) -> None:
    log = run_training(
        config(
            tiny,
            tmp_path / "out",
            strategy={
                "type": "deepspeed",
                "zeroStage": 2,
                "deepspeedConfig": {"zero_optimization": {"reduce_bucket_size": 1_000_000}},
            },
        ),
        tmp_path,
    )
    assert_learns(tmp_path / "out")
    assert '"reduce_bucket_size": 1000000' in log and '"stage": 2' in log


def test_deepspeed_zero3_trains_and_exports_full_weights(tiny: TinyAssets, tmp_path: Path) -> None:
    log = run_training(
        config(tiny, tmp_path / "out", strategy={"type": "deepspeed", "zeroStage": 3}), tmp_path
    )
    assert_learns(tmp_path / "out")
    assert "rank 1: weights partitioned across ranks as they load (ZeRO-3)" in log
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    original = AutoModelForCausalLM.from_pretrained(tiny.model)
    assert exported.lm_head.weight.shape == original.lm_head.weight.shape
    assert not exported.lm_head.weight.equal(original.lm_head.weight)


def test_deepspeed_imports_without_mlflow_which_stays_importable() -> None:
    """DeepSpeed's autotuner would import MLflow into every training process (seconds of CPU, unused):
    with the runtime's import guard installed, deepspeed imports without it, and MLflow then imports as
    before, for the runtime's own tracking. In a fresh interpreter: this one may have imported either."""
    script = (
        "import sys\n"
        "from modelfleet_train import import_guard\n"
        "import_guard.install()\n"
        "import deepspeed\n"
        "from deepspeed.autotuning import autotuner\n"
        "print(deepspeed.__name__, 'mlflow' in sys.modules, autotuner.has_mlflow)\n"
        "import mlflow\n"
        "print(mlflow.__name__, callable(mlflow.start_run))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["deepspeed False False", "mlflow True"]
