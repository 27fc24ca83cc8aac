"""Model-side configuration that needs no training run: QLoRA's 4-bit settings, LoRA targets,
`prepare` for offline use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from modelfleet_api.training import LoraSpec, TrainingMethod, TrainingModelSource
from modelfleet_train import cli
from modelfleet_train.methods.lora import lora_config
from modelfleet_train.model_init import InitPath
from modelfleet_train.model_loading import load_model, quantization_config

from hack import tinymodel

pytestmark = pytest.mark.unit


def test_qlora_loads_nf4_double_quantized_weights_computing_in_the_run_precision() -> None:
    config = quantization_config(torch.bfloat16)
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant is True
    assert config.bnb_4bit_compute_dtype == torch.bfloat16


def test_4bit_loading_on_cpu_fails_with_a_clear_message_before_reading_weights() -> None:
    with pytest.raises(
        RuntimeError, match=r"model\.loadIn4bit: 4-bit loading with bitsandbytes needs a CUDA GPU"
    ):
        load_model(
            TrainingModelSource(uri="/nonexistent"),
            TrainingMethod.QLORA,
            torch.bfloat16,
            torch.device("cpu"),
            InitPath.QUANTIZED,
            None,
        )


def test_lora_spec_maps_to_peft_and_all_linear_is_passed_through() -> None:
    spec = LoraSpec(r=8, alpha=32, dropout=0.1, target_modules=["q_proj", "v_proj"])
    config = lora_config(spec, TrainingMethod.LORA)
    assert (config.r, config.lora_alpha, config.lora_dropout) == (8, 32, 0.1)
    assert set(config.target_modules) == {"q_proj", "v_proj"}
    assert config.task_type == "CAUSAL_LM"
    all_linear = lora_config(LoraSpec(target_modules=["all-linear"]), TrainingMethod.LORA)
    assert all_linear.target_modules == "all-linear"


def test_a_reward_models_adapters_are_for_sequence_classification_so_its_score_head_trains() -> None:
    assert lora_config(LoraSpec(), TrainingMethod.REWARD).task_type == "SEQ_CLS"


def test_prepare_copies_model_and_dataset_for_offline_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("MODELFLEET_CACHE_DIR", str(tmp_path / "cache"))
    tokenizer = tinymodel.train_tokenizer()
    tinymodel.make_model(tokenizer, tmp_path / "source-model")
    rows = tinymodel.instruction_rows(8)
    tinymodel.write_jsonl(tmp_path / "train.jsonl", rows)
    config = {
        "job": {"name": "p", "namespace": "n"},
        "model": {"uri": str(tmp_path / "source-model")},
        "dataset": {"uri": str(tmp_path / "train.jsonl")},
        "output": {"uri": str(tmp_path / "out")},
        "topology": {"nodes": 1, "gpusPerNode": 1},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    assert (
        cli.main(["prepare", "--config", str(tmp_path / "config.yaml"), "--target", str(tmp_path / "t")]) == 0
    )
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{\n") :])  # DeepSpeed may log its accelerator choice to stdout first
    assert printed == {
        "model": {"uri": str(tmp_path / "t" / "model")},
        "dataset": {"uri": str(tmp_path / "t" / "dataset"), "format": "arrow"},
    }
    import datasets

    assert datasets.load_from_disk(printed["dataset"]["uri"]).to_list() == rows
    assert (tmp_path / "t" / "model" / "config.json").exists()


def test_from_scratch_the_config_takes_the_overrides_and_the_tokenizers_vocabulary(tmp_path: Path) -> None:
    from modelfleet_train.model_loading import model_config

    tokenizer = tinymodel.train_tokenizer()
    tinymodel.make_model(tokenizer, tmp_path / "model")
    tokenizer.add_tokens(["<|tool|>"])  # a tokenizer trained later may be larger than the config's
    scratch = TrainingModelSource(
        uri=str(tmp_path / "model"), from_scratch=True, config_overrides={"num_hidden_layers": 1}
    )
    config = model_config(scratch, tokenizer, TrainingMethod.PRETRAIN)
    assert config.num_hidden_layers == 1 and config.vocab_size == len(tokenizer)
    assert (config.bos_token_id, config.eos_token_id) == (tokenizer.bos_token_id, tokenizer.eos_token_id)
    pretrained = model_config(
        TrainingModelSource(uri=str(tmp_path / "model")), tokenizer, TrainingMethod.FULL
    )
    assert pretrained.num_hidden_layers == 2 and pretrained.vocab_size == len(tokenizer) - 1
    typo = scratch.model_copy(update={"config_overrides": {"num_layers": 1}})
    with pytest.raises(ValueError, match=r"model\.configOverrides: LlamaConfig has no field 'num_layers'"):
        model_config(typo, tokenizer, TrainingMethod.PRETRAIN)


def test_a_reward_models_config_has_one_label_and_the_tokenizers_padding(tmp_path: Path) -> None:
    """The score is read at the last token that is not the config's padding: the one batches are padded
    with."""
    from modelfleet_train.model_loading import model_config
    from transformers import AutoConfig

    tokenizer = tinymodel.train_tokenizer()
    tinymodel.make_model(tokenizer, tmp_path / "model")
    saved = AutoConfig.from_pretrained(tmp_path / "model")
    saved.pad_token_id = None  # like Llama 3's: no padding token of its own
    saved.save_pretrained(tmp_path / "model")
    config = model_config(TrainingModelSource(uri=str(tmp_path / "model")), tokenizer, TrainingMethod.REWARD)
    assert config.num_labels == 1
    assert config.pad_token_id == tokenizer.pad_token_id is not None
