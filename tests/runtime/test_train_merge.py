"""``output.mergeAdapter`` on the tiny model: a LoRA job trained with torchrun (DDP, two ranks on gloo)
writes its adapter and, under ``merged/``, a full model whose logits equal those of the base with the
adapter applied; rank 0's last progress report names both, and the operator's ``status.output`` made
from that report gives the adapter, its base model and the merged model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from modelfleet_api import contract
from modelfleet_api.lineage import OutputKind, TrainingOutput
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.trainingjob import TrainingJobSpec
from modelfleet_operator.training.policies.output import training_output

from tests.runtime.conftest import KubeApi, TinyAssets, run_training, runtime_config

pytestmark = pytest.mark.runtime

STEPS = 4
LORA = {"type": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targetModules": ["q_proj", "v_proj"]}}


def test_a_lora_job_writes_the_merged_model_and_reports_it(
    tiny: TinyAssets, tmp_path: Path, kube_api: KubeApi
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    output = tmp_path / "out"
    config = runtime_config(
        tiny,
        output,
        method=LORA,
        hyperparameters={
            "learningRate": 5e-2,
            "maxSteps": STEPS,
            "perDeviceBatchSize": 4,
            "sequenceLength": 64,
        },
    )
    config["output"]["mergeAdapter"] = True
    progress_env = {
        contract.ENV_PROGRESS_CONFIGMAP: "lora-progress",
        contract.ENV_POD_NAMESPACE: "ml",
        "KUBECONFIG": str(kube_api.kubeconfig),
    }
    log = run_training(config, tmp_path / "work", env=progress_env)

    assert (output / "adapter_config.json").exists(), "the adapter is written as before"
    merged_dir = output / "merged"
    assert (merged_dir / "config.json").exists() and not (merged_dir / "adapter_config.json").exists()
    assert (merged_dir / "tokenizer.json").exists(), "the merged model is servable on its own"
    assert "merged the adapter into" in log

    tokens = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
        adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny.model), output).eval()
        base = AutoModelForCausalLM.from_pretrained(tiny.model).eval()
        merged_logits, adapted_logits = merged(tokens).logits, adapted(tokens).logits
        assert not torch.allclose(base(tokens).logits, adapted_logits), "training moved the adapter"
    torch.testing.assert_close(merged_logits, adapted_logits, rtol=1e-4, atol=1e-4)

    assert kube_api.patches, "rank 0 sent no progress"
    final = TrainingProgress.model_validate_json(kube_api.patches[-1][1]["data"][contract.PROGRESS_KEY])
    assert final.result is not None, "the last progress carries what training wrote"
    assert (final.result.kind, final.result.uri, final.result.merged_uri, final.result.step) == (
        OutputKind.ADAPTER,
        str(output),
        str(merged_dir),
        STEPS,
    )
    spec = TrainingJobSpec.model_validate(
        {
            "model": config["model"],
            "dataset": config["dataset"],
            "method": LORA,
            "output": {"uri": str(output), "mergeAdapter": True},
        }
    )
    assert training_output(spec, final) == TrainingOutput(
        uri=str(output),
        kind=OutputKind.ADAPTER,
        base_model=str(tiny.model),
        merged_uri=str(merged_dir),
        step=STEPS,
    )
