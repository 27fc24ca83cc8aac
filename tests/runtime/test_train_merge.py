"""``output.mergeAdapter`` on the tiny model: a LoRA job trained with torchrun (DDP, two ranks on gloo)
writes its adapter and, under ``merged/``, a full model whose logits equal those of the base with the
adapter applied."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.runtime.conftest import TinyAssets, run_training, runtime_config

pytestmark = pytest.mark.runtime


def test_a_lora_job_writes_the_merged_model(tiny: TinyAssets, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    output = tmp_path / "out"
    lora = {
        "type": "lora",
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targetModules": ["q_proj", "v_proj"]},
    }
    config = runtime_config(
        tiny,
        output,
        method=lora,
        hyperparameters={"learningRate": 5e-2, "maxSteps": 4, "perDeviceBatchSize": 4, "sequenceLength": 64},
    )
    config["output"]["mergeAdapter"] = True
    log = run_training(config, tmp_path / "work")

    assert (output / "adapter_config.json").exists(), "the adapter is written as before"
    merged_dir = output / "merged"
    assert (merged_dir / "config.json").exists() and not (merged_dir / "adapter_config.json").exists()
    assert "merged the adapter into" in log

    tokens = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
        adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny.model), output).eval()
        base = AutoModelForCausalLM.from_pretrained(tiny.model).eval()
        merged_logits, adapted_logits = merged(tokens).logits, adapted(tokens).logits
        assert not torch.allclose(base(tokens).logits, adapted_logits), "training moved the adapter"
    torch.testing.assert_close(merged_logits, adapted_logits, rtol=1e-4, atol=1e-4)
