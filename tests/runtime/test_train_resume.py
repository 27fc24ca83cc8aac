"""Resume exactness for every method x strategy pair that supports resume.

A gang restart (failed worker, stall, spot eviction) must continue the run as if it had never
stopped: the losses of the resumed steps must equal the straight run's. For each strategy, one
two-process `torchrun` of this module's `main` runs the runtime's own `Trainer` for every method in
turn: a straight run of STEPS steps with a checkpoint at RESUME_AT, then, in a fresh output and
checkpoint directory holding only a copy of that checkpoint, a resumed run to STEPS. The process
group and imports are shared by the methods (a launch costs more than a tiny run); each run builds
its model, strategy and data anew from the config, exactly as a restarted pod does, and everything a
resumed run continues from comes from the checkpoint files. The tests then compare the runs' JSON-
lines metrics. Pairs the runtime refuses are refused by `validate`, tested at the end.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import traceback
from pathlib import Path
from typing import Any

import pytest
from modelfleet_train.checkpoints import LATEST, step_name

from tests.runtime.conftest import (
    TinyAssets,
    run_module_ranks,
    runtime_config,
    runtime_env,
    step_losses,
    write_config,
)

pytestmark = pytest.mark.runtime

STEPS = 4
RESUME_AT = 2
LORA = {"r": 4, "alpha": 8, "dropout": 0.1}  # dropout on: the resumed RNG state matters

STRATEGIES: dict[str, dict[str, Any]] = {
    "ddp": {"type": "ddp"},
    "fsdp": {"type": "fsdp"},
    "zero2": {"type": "deepspeed", "zeroStage": 2},
    "zero3": {"type": "deepspeed", "zeroStage": 3},
}
METHODS: dict[str, dict[str, Any]] = {
    "full": {"type": "full"},
    "lora": {"type": "lora", "lora": LORA},
    "dpo-lora": {"type": "dpo", "lora": LORA},
    "dpo-full": {"type": "dpo"},
    "pretrain-scratch": {"type": "pretrain"},
    "reward": {"type": "reward"},
    "reward-lora": {"type": "reward", "lora": LORA},
}
SCRATCH = {"fromScratch": True, "configOverrides": {"num_hidden_layers": 1}}
"""Pre-training from the model's config: one layer instead of two, new weights, documents chunked into
SCRATCH_SEQUENCE-token sequences, the tokenizer from `tokenizerUri`."""
SCRATCH_SEQUENCE = 16
REFUSED = {("zero3", "dpo-full"): "method.lora"}
"""Pairs `validate` rejects, with the field its message names (full DPO's frozen reference is a copy
of the policy, which ZeRO-3's partitioned model cannot give)."""

PAIRS = [(s, m) for s in STRATEGIES for m in METHODS if (s, m) not in REFUSED]


def case_config(
    tiny: TinyAssets, model: Path, strategy: str, method: str, output: Path, checkpoints: Path
) -> dict[str, Any]:
    kind = METHODS[method]["type"]
    data = {"dpo": tiny.preferences, "reward": tiny.preferences, "pretrain": tiny.pretrain}.get(
        kind, tiny.instructions
    )
    scratch = SCRATCH | {"tokenizerUri": str(tiny.model)} if kind == "pretrain" else {}
    config = runtime_config(
        tiny,
        output,
        model={"uri": str(model), **scratch},
        method=METHODS[method],
        strategy=STRATEGIES[strategy],
        dataset={"uri": str(data), "format": "jsonl"},
        checkpoint={"uri": str(checkpoints), "intervalSteps": RESUME_AT, "keepLast": 2},
    )
    sequence = SCRATCH_SEQUENCE if scratch else 48
    config["hyperparameters"].update(maxSteps=STEPS, perDeviceBatchSize=2, sequenceLength=sequence)
    return config


def run_case(config_file: Path, resume_from: Path | None) -> None:
    """One run of the runtime's Trainer on this rank; `resume_from` is a checkpoint to start from."""
    from modelfleet_train import distributed
    from modelfleet_train.config import Machine, load_config
    from modelfleet_train.trainer import Trainer

    config = load_config(config_file, Machine.detect())
    ctx = distributed.init_distributed()
    if resume_from is not None and ctx.is_main:
        target = Path(config.checkpoint.uri or "") / resume_from.name
        shutil.copytree(resume_from, target)
        (target.parent / LATEST).write_text(str(RESUME_AT))
    distributed.barrier()
    Trainer(config, ctx).run()


def main() -> None:
    """Every case of the plan, straight then resumed; a failing case is recorded and the next runs."""
    from modelfleet_train import cli, distributed

    cli.setup_logging(int(os.environ.get("RANK", "0")))
    parser = argparse.ArgumentParser()
    parser.add_argument("--plan", type=Path, required=True)
    args = parser.parse_args()
    plan = json.loads(args.plan.read_text())
    ctx = distributed.init_distributed()
    try:
        for case in plan:
            try:
                run_case(Path(case["straight"]), None)
                run_case(Path(case["resumed"]), Path(case["checkpoint"]))
            except Exception:
                Path(case["dir"], f"error-rank{ctx.rank}.txt").write_text(traceback.format_exc())
            gc.collect()  # the strategy (a ZeRO-3 one holds transformers' DeepSpeed config) goes first
            distributed.barrier()
    finally:
        distributed.shutdown()


Case = dict[str, Path]


@pytest.fixture(scope="module")
def cases(tiny: TinyAssets, tied_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """Every pair's straight and resumed runs, from one torchrun; keyed `strategy-method`."""
    work = tmp_path_factory.mktemp("resume")
    plan, made = [], {}
    for strategy, method in PAIRS:
        case = work / f"{strategy}-{method}"
        case.mkdir()
        runs = {
            run: case_config(tiny, tied_model, strategy, method, case / run, case / f"{run}-checkpoints")
            for run in ("straight", "resumed")
        }
        plan.append(
            {
                "dir": str(case),
                "straight": str(write_config(runs["straight"], case / "straight.yaml")),
                "resumed": str(write_config(runs["resumed"], case / "resumed.yaml")),
                "checkpoint": str(case / "straight-checkpoints" / step_name(RESUME_AT)),
            }
        )
        made[case.name] = {"dir": case, "straight": case / "straight", "resumed": case / "resumed"}
    (work / "plan.json").write_text(json.dumps(plan))
    env = runtime_env(work) | {"MODELFLEET_METRICS_PORT": "0"}  # a fresh port for every run
    run_module_ranks(__name__, ["--plan", str(work / "plan.json")], work, env)
    return made


@pytest.mark.parametrize(("strategy", "method"), PAIRS, ids=[f"{s}-{m}" for s, m in PAIRS])
def test_resumed_steps_reproduce_the_straight_run(cases: dict[str, Case], strategy: str, method: str) -> None:
    case = cases[f"{strategy}-{method}"]
    errors = sorted(case["dir"].glob("error-rank*.txt"))
    assert not errors, "\n".join(p.read_text() for p in errors)
    straight, resumed = step_losses(case["straight"]), step_losses(case["resumed"])
    assert sorted(straight) == list(range(1, STEPS + 1))
    assert sorted(resumed) == list(range(RESUME_AT + 1, STEPS + 1)), "the resumed run did not resume"
    for step in resumed:
        assert resumed[step] == pytest.approx(straight[step], rel=1e-6, abs=1e-6), (step, straight, resumed)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_model_trained_from_scratch_has_the_overridden_shape_and_new_weights(
    cases: dict[str, Case], tied_model: Path, strategy: str
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    exported = AutoModelForCausalLM.from_pretrained(cases[f"{strategy}-pretrain-scratch"]["straight"])
    original = AutoModelForCausalLM.from_pretrained(tied_model)
    assert exported.config.num_hidden_layers == 1 and original.config.num_hidden_layers == 2
    assert exported.config.vocab_size == len(AutoTokenizer.from_pretrained(tied_model))
    embeddings = exported.get_input_embeddings().weight
    assert embeddings.shape == original.get_input_embeddings().weight.shape
    assert not embeddings.allclose(original.get_input_embeddings().weight, atol=1e-2)


@pytest.mark.parametrize(("strategy", "method"), list(REFUSED), ids=[f"{s}-{m}" for s, m in REFUSED])
def test_refused_pairs_stop_before_any_process_group_naming_the_field(
    strategy: str, method: str, tiny: TinyAssets, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelfleet_train import cli

    config = case_config(tiny, tiny.model, strategy, method, tmp_path / "out", tmp_path / "checkpoints")
    code = cli.main(["train", "--config", str(write_config(config, tmp_path / "config.yaml"))])
    assert code == cli.EXIT_CONFIG_ERROR
    assert f"  {REFUSED[(strategy, method)]}: " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


if __name__ == "__main__":
    main()
