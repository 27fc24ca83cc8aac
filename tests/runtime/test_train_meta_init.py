"""Sharded strategies never read the whole model on every rank (model_init).

Most tests run this module's `main` under torchrun in two gloo processes: the runtime's own steps
(build the strategy, load the model, prepare it, set the strategy up) with an inspection after
loading and after setup, written to one JSON file per rank. The test process compares them with
the model `from_pretrained` gives and with a non-sharded forward pass over the same batch. That a
resume over the broadcast (FSDP) or partitioned (ZeRO-3) weights continues the straight run exactly
is tested with the other pairs in test_train_resume.py, on the same tied-embedding model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from modelfleet_api.training import LoraSpec, TrainingMethod

from tests.runtime.conftest import (
    TinyAssets,
    run_module_ranks,
    runtime_config,
    runtime_env,
    write_config,
)

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


def main() -> None:
    """One rank: set the strategy up the way the trainer does and report what it saw."""
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus
    from modelfleet_train import distributed
    from modelfleet_train.config import Machine, load_config
    from modelfleet_train.methods import prepare_model
    from modelfleet_train.model_init import init_path
    from modelfleet_train.model_loading import load_model, load_tokenizer
    from modelfleet_train.strategies import build_strategy
    from transformers import set_seed

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    config = load_config(args.config, Machine.detect())
    ctx = distributed.init_distributed()
    try:
        set_seed(config.hyperparameters.seed)
        strategy = build_strategy(config, ctx)
        path = init_path(config, ctx.rank)
        source = config.base_model
        model = load_model(
            source, config.method.type, torch.float32, ctx.device, path, load_tokenizer(source)
        )
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
            torch.save(state, args.report.parent / "state.pt")
        report = loaded | {
            "tied": inner.lm_head.weight is inner.get_input_embeddings().weight,
            "loss": loss,
        }
        args.report.with_name(f"rank{ctx.rank}.json").write_text(json.dumps(report))
    finally:
        distributed.shutdown()


def run_ranks(config: dict[str, Any], work: Path) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """Each rank's report and the full state dict gathered after setup."""
    config_file = write_config(config, work / "config.yaml")
    arguments = ["--config", str(config_file), "--report", str(work / "report.json")]
    run_module_ranks(__name__, arguments, work, runtime_env(work))
    reports = [json.loads((work / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    return reports, torch.load(work / "state.pt", weights_only=True)


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
    tiny: TinyAssets, tied_model: Path, tmp_path: Path
) -> None:
    config = runtime_config(tiny, tmp_path / "out", model={"uri": str(tied_model)}, strategy={"type": "fsdp"})
    reports, state = run_ranks(config, tmp_path)
    expected, loss = reference(tied_model)

    assert [(r["path"], r["on_meta"]) for r in reports] == [("RANK0_WEIGHTS", False), ("META", True)]
    assert reports[1]["held_elements"] == 0
    assert_same_weights(state, expected)  # rotary inv_freq is no state: the loss below checks it
    assert all(r["tied"] for r in reports)
    assert all(r["loss"] == pytest.approx(loss, abs=1e-6) for r in reports), (reports, loss)


def test_fsdp_lora_adapters_are_added_on_meta_and_filled_from_rank0(
    tiny: TinyAssets, tied_model: Path, tmp_path: Path
) -> None:
    config = runtime_config(
        tiny,
        tmp_path / "out",
        model={"uri": str(tied_model)},
        strategy={"type": "fsdp"},
        method={"type": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
    )
    reports, state = run_ranks(config, tmp_path)
    expected, loss = reference(tied_model, LoraSpec(r=4, alpha=8, dropout=0.0))

    assert reports[1]["on_meta"]
    assert any("lora_A" in name for name in expected)
    assert_same_weights(state, expected)  # rank 1's shards of the random lora_A are rank 0's values
    assert all(r["tied"] for r in reports)
    assert all(r["loss"] == pytest.approx(loss, abs=1e-6) for r in reports)


def test_zero3_partitions_parameters_as_they_load(tiny: TinyAssets, tied_model: Path, tmp_path: Path) -> None:
    config = runtime_config(
        tiny, tmp_path / "out", model={"uri": str(tied_model)}, strategy={"type": "deepspeed", "zeroStage": 3}
    )
    reports, state = run_ranks(config, tmp_path)
    expected, loss = reference(tied_model)

    assert [(r["path"], r["partitioned"]) for r in reports] == [("ZERO3_PARTITIONED", True)] * 2
    total = sum(t.numel() for t in expected.values())
    assert all(0 < r["held_elements"] <= total // 2 + 1024 for r in reports)  # a half, plus padding
    assert_same_weights(state, expected)
    assert all(r["tied"] for r in reports)
    assert all(r["loss"] == pytest.approx(loss, abs=1e-6) for r in reports)


if __name__ == "__main__":
    main()
