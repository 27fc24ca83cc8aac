"""``output.mergeAdapter`` on the tiny model: a LoRA job trained by the runtime's Trainer (DDP, two ranks
on gloo, in the session's shared launch: tests.runtime.shared_launches) writes its adapter and, under
``merged/``, a full model whose logits equal those of the base with the adapter applied; rank 0's last
progress report names both, and the operator's ``status.output`` made from that report gives the
adapter, its base model and the merged model. The merge and the report are the Trainer's (its export
step), not the command line's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from modelfleet_api import contract
from modelfleet_api.lineage import OutputKind, TrainingOutput
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.trainingjob import TrainingJobSpec
from modelfleet_operator.training.policies.output import training_output

from tests.runtime.conftest import KubeApi, TinyAssets, runtime_config
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

pytestmark = pytest.mark.runtime

STEPS = 4
LORA = {"type": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targetModules": ["q_proj", "v_proj"]}}
PROGRESS = "lora-progress"
"""The ConfigMap rank 0 reports progress to."""


def merge_config(tiny: TinyAssets, output: Path) -> dict[str, Any]:
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
    return config


@shared_case(nproc=2)
def merge_case(request: pytest.FixtureRequest, directory: Path) -> Case:
    kube_api: KubeApi = request.getfixturevalue("session_kube_api")
    progress_env = {
        contract.ENV_PROGRESS_CONFIGMAP: PROGRESS,
        contract.ENV_POD_NAMESPACE: "ml",
        "KUBECONFIG": str(kube_api.kubeconfig),
    }
    config = merge_config(request.getfixturevalue("tiny"), directory / "out")
    return Case(directory, [Run("train", config, env=progress_env)])


def test_a_lora_job_writes_the_merged_model_and_reports_it(
    tiny: TinyAssets, shared_trainer_runs: SharedLaunches, session_kube_api: KubeApi
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    case = shared_trainer_runs.case(merge_case)
    log = case.log("train")
    output = case.directory / "out"
    config = merge_config(tiny, output)

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

    patches = session_kube_api.patches_of(PROGRESS)
    assert patches, "rank 0 sent no progress"
    final = TrainingProgress.model_validate_json(patches[-1]["data"][contract.PROGRESS_KEY])
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
