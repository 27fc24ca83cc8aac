"""Resume exactness for every method x strategy pair that supports resume.

A gang restart (failed worker, stall, spot eviction) must continue the run as if it had never stopped:
the losses of the resumed steps must equal the straight run's. The session's shared two-rank launch
(tests.runtime.shared_launches) runs the runtime's own `Trainer` for every pair in turn: a straight run
of STEPS steps with a checkpoint at RESUME_AT, then, in a fresh output and checkpoint directory holding
only a copy of that checkpoint, a resumed run to STEPS. The process group and imports are shared with the
other runs (a launch costs more than a tiny run); each run builds its model, strategy and data anew from
the config, exactly as a restarted pod does, and everything a resumed run continues from comes from the
checkpoint files. The tests then compare the runs' JSON-lines metrics. Pairs the runtime refuses are
refused by `validate`, tested at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modelfleet_train.checkpoints import step_name

from tests.runtime.conftest import TinyAssets, runtime_config, step_losses, write_config
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

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


@shared_case(nproc=2)
def resume_pairs(request: pytest.FixtureRequest, work: Path) -> dict[str, Case]:
    """Every pair's straight and resumed runs; keyed `strategy-method`."""
    tiny: TinyAssets = request.getfixturevalue("tiny")
    tied_model: Path = request.getfixturevalue("tied_model")
    made = {}
    for strategy, method in PAIRS:
        case = work / f"{strategy}-{method}"
        runs = {
            run: case_config(tiny, tied_model, strategy, method, case / run, case / f"{run}-checkpoints")
            for run in ("straight", "resumed")
        }
        made[case.name] = Case(
            case,
            [
                Run("straight", runs["straight"]),
                Run(
                    "resumed",
                    runs["resumed"],
                    resume_from=case / "straight-checkpoints" / step_name(RESUME_AT),
                ),
            ],
        )
    return made


@pytest.fixture(scope="module")
def cases(shared_trainer_runs: SharedLaunches) -> dict[str, Case]:
    return shared_trainer_runs.cases(resume_pairs)


@pytest.mark.parametrize(("strategy", "method"), PAIRS, ids=[f"{s}-{m}" for s, m in PAIRS])
def test_resumed_steps_reproduce_the_straight_run(cases: dict[str, Case], strategy: str, method: str) -> None:
    case = cases[f"{strategy}-{method}"]
    case.check()
    straight, resumed = step_losses(case.directory / "straight"), step_losses(case.directory / "resumed")
    assert sorted(straight) == list(range(1, STEPS + 1))
    assert sorted(resumed) == list(range(RESUME_AT + 1, STEPS + 1)), "the resumed run did not resume"
    for step in resumed:
        assert resumed[step] == pytest.approx(straight[step], rel=1e-6, abs=1e-6), (step, straight, resumed)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_model_trained_from_scratch_has_the_overridden_shape_and_new_weights(
    cases: dict[str, Case], tied_model: Path, strategy: str
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    exported = AutoModelForCausalLM.from_pretrained(
        cases[f"{strategy}-pretrain-scratch"].directory / "straight"
    )
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
