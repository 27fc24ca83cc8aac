"""Sharded strategies never read the whole model on every rank (model_init).

Three cases (FSDP, FSDP with LoRA, ZeRO-3) run in turn in the session's shared launch of two gloo
processes (tests.runtime.shared_launches), each rank calling `inspect_case`: for each, the runtime's own
steps (build the strategy, load the model, prepare it, set the strategy up) from the case's config, with
an inspection after loading and after setup, written to one JSON file per rank. What is inspected is how
each case's model is built, which starts anew from its config in every case; only the process group and
the imports are shared (a launch costs far more than a case). The test process compares the reports with
the model `from_pretrained` gives and with a non-sharded forward pass over the same batch. That a resume
over the broadcast (FSDP) or partitioned (ZeRO-3) weights continues the straight run exactly is tested
with the other pairs in test_train_resume.py, on the same tied-embedding model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from modelfleet_api.training import LoraSpec, TrainingMethod

from tests.runtime.conftest import TinyAssets, runtime_config
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

pytestmark = pytest.mark.runtime

BATCH_SEED = 11
SEED = 7
"""The runtime config's `hyperparameters.seed` (tests.runtime.conftest.runtime_config)."""


def fixed_batch(vocab_size: int) -> dict[str, torch.Tensor]:
    """The same two sequences on every rank and in the test process."""
    ids = torch.randint(0, vocab_size, (2, 24), generator=torch.Generator().manual_seed(BATCH_SEED))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


def held_elements(parameter: torch.nn.Parameter) -> int:
    """Elements of `parameter` this rank's memory holds: a ZeRO-3 partition, nothing on meta."""
    if hasattr(parameter, "ds_tensor"):
        return int(parameter.ds_tensor.numel())
    return 0 if parameter.is_meta else parameter.numel()


def inspect_case(case: dict[str, Any], rank: int) -> None:
    """One case on this rank (`Case.call`): set the strategy up from the case's config the way the
    trainer does and report what it saw."""
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus
    from modelfleet_train import distributed
    from modelfleet_train.config import Machine, load_config
    from modelfleet_train.methods import prepare_model
    from modelfleet_train.model_init import init_path
    from modelfleet_train.model_loading import load_model, load_tokenizer
    from modelfleet_train.strategies import build_strategy
    from transformers import set_seed

    report_dir = Path(case["dir"])
    config = load_config(Path(case["runs"][0]["config"]), Machine.detect())
    ctx = distributed.init_distributed()
    set_seed(config.hyperparameters.seed)
    strategy = build_strategy(config, ctx)
    path = init_path(config, ctx.rank)
    source = config.base_model
    model = load_model(source, config.method.type, torch.float32, ctx.device, path, load_tokenizer(source))
    parameters = list(model.parameters())
    loaded = {
        "path": path.name,
        "on_meta": all(p.is_meta for p in parameters),
        "partitioned": all(
            getattr(p, "ds_status", None) == ZeroParamStatus.NOT_AVAILABLE for p in parameters
        ),
        "held_elements": sum(held_elements(p) for p in parameters),
    }
    strategy.setup(prepare_model(model, config), total_steps=1)
    inner = strategy.unwrapped()
    state = strategy.full_state_dict()
    with torch.no_grad(), strategy.forward_context():
        loss = strategy.model(**fixed_batch(inner.config.vocab_size)).loss.item()
    if ctx.is_main:
        torch.save(state, report_dir / "state.pt")
    report = loaded | {"tied": inner.lm_head.weight is inner.get_input_embeddings().weight, "loss": loss}
    (report_dir / f"rank{ctx.rank}.json").write_text(json.dumps(report))


Inspected = dict[str, tuple[list[dict[str, Any]], dict[str, torch.Tensor]]]
"""Case -> each rank's report and the full state dict gathered after setup."""

CASES = ("fsdp", "fsdp-lora", "zero3")
"""In launch order: ZeRO-3 last, as it leaves transformers a DeepSpeed config until it is collected."""


@shared_case(nproc=2)
def meta_init_cases(request: pytest.FixtureRequest, work: Path) -> dict[str, Case]:
    tiny: TinyAssets = request.getfixturevalue("tiny")
    tied_model: Path = request.getfixturevalue("tied_model")
    strategies = {
        "fsdp": {"strategy": {"type": "fsdp"}},
        "fsdp-lora": {
            "strategy": {"type": "fsdp"},
            "method": {"type": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
        },
        "zero3": {"strategy": {"type": "deepspeed", "zeroStage": 3}},
    }
    cases = {}
    for name in CASES:
        config = runtime_config(tiny, work / name / "out", model={"uri": str(tied_model)}, **strategies[name])
        cases[name] = Case(work / name, [Run("inspect", config)], call=f"{__name__}:{inspect_case.__name__}")
    return cases


@pytest.fixture(scope="module")
def inspected(shared_trainer_runs: SharedLaunches) -> Inspected:
    """Case -> each rank's report and the full state dict gathered after setup."""
    results = {}
    for name, case in shared_trainer_runs.cases(meta_init_cases).items():
        case.check()
        reports = [json.loads((case.directory / f"rank{rank}.json").read_text()) for rank in (0, 1)]
        results[name] = reports, torch.load(case.directory / "state.pt", weights_only=True)
    return results


def reference(model_dir: Path, lora: LoraSpec | None = None) -> tuple[dict[str, torch.Tensor], float]:
    """The state dict `from_pretrained` gives (with adapters added as on one rank from the same
    seed) and its loss on the fixed batch, unsharded."""
    from modelfleet_train.methods.lora import apply_lora
    from transformers import AutoModelForCausalLM, set_seed

    set_seed(SEED)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if lora is not None:
        model = apply_lora(model, lora, TrainingMethod.LORA)
    with torch.no_grad():
        loss = model(**fixed_batch(model.config.vocab_size)).loss.item()
    return model.state_dict(), loss


def assert_same_weights(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(state) == set(expected)
    unequal = [name for name, tensor in expected.items() if not torch.equal(state[name], tensor)]
    assert not unequal, unequal


def test_fsdp_rank0_alone_reads_the_weights_and_fills_every_shard(
    inspected: Inspected, tied_model: Path
) -> None:
    reports, state = inspected["fsdp"]
    expected, loss = reference(tied_model)

    assert [(r["path"], r["on_meta"]) for r in reports] == [("RANK0_WEIGHTS", False), ("META", True)]
    assert reports[1]["held_elements"] == 0
    assert_same_weights(state, expected)  # rotary inv_freq is no state: the loss below checks it
    assert all(r["tied"] for r in reports)
    assert all(r["loss"] == pytest.approx(loss, abs=1e-6) for r in reports), (reports, loss)


def test_fsdp_lora_adapters_are_added_on_meta_and_filled_from_rank0(
    inspected: Inspected, tied_model: Path
) -> None:
    reports, state = inspected["fsdp-lora"]
    expected, loss = reference(tied_model, LoraSpec(r=4, alpha=8, dropout=0.0))

    assert reports[1]["on_meta"]
    assert any("lora_A" in name for name in expected)
    assert_same_weights(state, expected)  # rank 1's shards of the random lora_A are rank 0's values
    assert all(r["tied"] for r in reports)
    assert all(r["loss"] == pytest.approx(loss, abs=1e-6) for r in reports)


def test_zero3_partitions_parameters_as_they_load(inspected: Inspected, tied_model: Path) -> None:
    reports, state = inspected["zero3"]
    expected, loss = reference(tied_model)

    assert [(r["path"], r["partitioned"]) for r in reports] == [("ZERO3_PARTITIONED", True)] * 2
    total = sum(t.numel() for t in expected.values())
    assert all(0 < r["held_elements"] <= total // 2 + 1024 for r in reports)  # a half, plus padding
    assert_same_weights(state, expected)
    assert all(r["tied"] for r in reports)
    assert all(r["loss"] == pytest.approx(loss, abs=1e-6) for r in reports)
