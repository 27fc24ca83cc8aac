"""FSDP2 and DeepSpeed ZeRO-2/3, two processes each on gloo, loss going down.

DDP is covered with checkpoint/resume in test_train_ddp.py. The FSDP run also exercises bf16 mixed
precision, chat data with packing and gradient checkpointing; ZeRO-3 also exports its partitioned weights
as a normal transformers checkpoint. The three runs are cases of the session's shared two-rank launch
(tests.runtime.shared_launches): what they test is what the runtime's Trainer does with each strategy,
and every run builds its model, strategy and data anew from its config; the launch itself is tested in
test_train_contract.py and test_train_ddp.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import TinyAssets, runtime_config, step_losses
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

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


@shared_case(nproc=2)
def strategy_runs(request: pytest.FixtureRequest, work: Path) -> dict[str, Case]:
    """The FSDP2, ZeRO-2 and ZeRO-3 runs (ZeRO-3 last: it leaves transformers a DeepSpeed config until
    its strategy is collected); keyed by strategy."""
    tiny: TinyAssets = request.getfixturevalue("tiny")
    fsdp2 = config(
        tiny,
        work / "fsdp2" / "out",
        strategy={"type": "fsdp", "fsdp": {"reshardAfterForward": True}},
        precision="bf16",
        dataset={
            "uri": str(tiny.chat),
            "format": "jsonl",
            "fields": {"messages": "messages"},
            "packing": True,
        },
        hyperparameters={"sequenceLength": 128, "perDeviceBatchSize": 2, "gradientCheckpointing": True},
    )
    zero2 = config(
        tiny,
        work / "zero2" / "out",
        strategy={
            "type": "deepspeed",
            "zeroStage": 2,
            "deepspeedConfig": {"zero_optimization": {"reduce_bucket_size": 1_000_000}},
        },
    )
    zero3 = config(tiny, work / "zero3" / "out", strategy={"type": "deepspeed", "zeroStage": 3})
    return {
        name: Case(work / name, [Run("train", run)])
        for name, run in (("fsdp2", fsdp2), ("zero2", zero2), ("zero3", zero3))
    }


@pytest.fixture(scope="module")
def runs(shared_trainer_runs: SharedLaunches) -> dict[str, Case]:
    return shared_trainer_runs.cases(strategy_runs)


def test_fsdp2_bf16_packed_chat_with_gradient_checkpointing(runs: dict[str, Case]) -> None:
    log = runs["fsdp2"].log("train")
    output = runs["fsdp2"].directory / "out"
    assert_learns(output)
    assert "rank1 INFO modelfleet_train.model_init: rank 1: model on meta, weights from rank 0" in log
    from transformers import AutoModelForCausalLM

    # the checkpoint wrappers must not leak into the exported weights' names
    _, loading = AutoModelForCausalLM.from_pretrained(output, output_loading_info=True)
    assert not loading["missing_keys"] and not loading["unexpected_keys"], loading


def test_deepspeed_zero2_logs_its_merged_config(runs: dict[str, Case]) -> None:
    log = runs["zero2"].log("train")
    assert_learns(runs["zero2"].directory / "out")
    assert '"reduce_bucket_size": 1000000' in log and '"stage": 2' in log


def test_deepspeed_zero3_trains_and_exports_full_weights(runs: dict[str, Case], tiny: TinyAssets) -> None:
    log = runs["zero3"].log("train")
    output = runs["zero3"].directory / "out"
    assert_learns(output)
    assert "rank 1: weights partitioned across ranks as they load (ZeRO-3)" in log
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(output)
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
