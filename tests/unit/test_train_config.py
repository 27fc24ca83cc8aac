"""`python -m modelfleet_train validate`: bad configs fail before any process starts, naming the field."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelfleet_train import cli
from modelfleet_train.config import Machine, check_config, parse_config

pytestmark = pytest.mark.unit


def base_config() -> dict[str, Any]:
    return {
        "job": {"name": "demo", "namespace": "team-a"},
        "model": {"uri": "/models/llama"},
        "dataset": {"uri": "/data/train.jsonl", "format": "jsonl"},
        "method": {"type": "lora"},
        "strategy": {"type": "deepspeed", "zeroStage": 2},
        "precision": "bf16",
        "hyperparameters": {"maxSteps": 100, "perDeviceBatchSize": 4, "gradientAccumulationSteps": 8},
        "output": {"uri": "https://acct.blob.core.windows.net/models/demo"},
        "topology": {"nodes": 2, "gpusPerNode": 8},
    }


def with_changes(**changes: Any) -> dict[str, Any]:
    """The base config with dotted paths set (a value of None deletes the key)."""
    config = base_config()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return config


def run_validate(
    config: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    code = cli.main(["validate", "--config", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BAD_CONFIGS = [
    # schema errors (pydantic, from the shared API models)
    (with_changes(method__type="sft"), "method.type"),
    (with_changes(hyperparameters__learningRate=5.0), "hyperparameters.learningRate"),
    (with_changes(strategy__zeroStage=4), "strategy.zeroStage"),
    (with_changes(dataset__format="csv"), "dataset.format"),
    (with_changes(output=None), "output"),
    (with_changes(hyperparameters__batchSize=4), "hyperparameters.batchSize"),
    # cross-field rules (modelfleet_train.config)
    (with_changes(method__type="qlora"), "method.type"),
    (with_changes(model__loadIn4bit=True, method__type="full"), "model.loadIn4bit"),
    (with_changes(strategy={"type": "fsdp", "zeroStage": 3}), "strategy.zeroStage"),
    (with_changes(strategy={"type": "ddp", "cpuOffload": "optimizer"}), "strategy.cpuOffload"),
    (
        with_changes(strategy={"type": "deepspeed", "zeroStage": 2, "cpuOffload": "optimizer_and_params"}),
        "strategy.cpuOffload",
    ),
    (
        with_changes(strategy={"type": "deepspeed", "zeroStage": 0, "cpuOffload": "optimizer"}),
        "strategy.cpuOffload",
    ),
    (
        with_changes(strategy={"type": "deepspeed", "deepspeedConfig": {"train_batch_size": 64}}),
        "strategy.deepspeedConfig",
    ),
    (with_changes(strategy={"type": "ddp", "fsdp": {"reshardAfterForward": False}}), "strategy.fsdp"),
    (with_changes(precision="fp16"), "precision"),
    (with_changes(dataset__uri="/data/train.parquet"), "dataset.format"),
    (with_changes(method={"type": "dpo"}, dataset__packing=True), "dataset.packing"),
    (with_changes(method={"type": "full", "lora": {"r": 8}}), "method.lora"),
    (with_changes(method={"type": "lora", "dpo": {"beta": 0.2}}), "method.dpo"),
    (with_changes(method={"type": "full"}, output__mergeAdapter=True), "output.mergeAdapter"),
    (with_changes(method={"type": "dpo"}, output__mergeAdapter=True), "output.mergeAdapter"),
    (with_changes(method={"type": "dpo"}, strategy={"type": "deepspeed", "zeroStage": 3}), "method.lora"),
    (with_changes(hyperparameters__warmupSteps=100), "hyperparameters.warmupSteps"),
    (with_changes(output__uri="s3://bucket/out"), "output.uri"),
    (with_changes(checkpoint={"uri": "az://ckpt/demo"}), "checkpoint.uri"),  # no AZURE_STORAGE_ACCOUNT
    (
        with_changes(method={"type": "pretrain"}, dataset__fields={"messages": "conversation"}),
        "dataset.fields.messages",
    ),
]


@pytest.mark.parametrize(("config", "field"), BAD_CONFIGS, ids=[f for _, f in BAD_CONFIGS])
def test_validate_rejects_bad_config_naming_the_field(
    config: dict[str, Any],
    field: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT", raising=False)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    code, out, err = run_validate(config, tmp_path, capsys)
    assert code == cli.EXIT_CONFIG_ERROR
    assert out == ""
    assert f"  {field}: " in err, err


def test_validate_names_mlflow_uri_when_the_image_lacks_mlflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real_find_spec(name, *a)
    )
    code, out, err = run_validate(
        with_changes(tracking={"mlflowUri": "http://mlflow:5000"}), tmp_path, capsys
    )
    assert (code, out) == (cli.EXIT_CONFIG_ERROR, "")
    assert "  tracking.mlflowUri: the mlflow package is not installed" in err, err


def test_validate_accepts_a_good_config_and_shows_the_merged_deepspeed_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = with_changes(strategy__deepspeedConfig={"zero_optimization": {"reduce_bucket_size": 5e7}})
    code, out, err = run_validate(config, tmp_path, capsys, "--world-size", "16")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["valid"] is True
    assert summary["worldSize"] == 16
    zero = summary["deepspeedConfig"]["zero_optimization"]
    assert zero["stage"] == 2 and zero["reduce_bucket_size"] == 5e7
    assert summary["deepspeedConfig"]["train_batch_size"] == 4 * 8 * 16


def test_validate_checks_the_world_size_against_the_topology(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_validate(base_config(), tmp_path, capsys, "--world-size", "8")
    assert code == cli.EXIT_CONFIG_ERROR
    assert "topology: nodes x gpusPerNode = 16 but 8 processes" in err


def test_qlora_is_accepted_on_a_gpu_node_with_bitsandbytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: object() if name == "bitsandbytes" else real_find_spec(name)
    )
    config = parse_config(yaml.safe_dump(with_changes(method__type="qlora", strategy={"type": "ddp"})))
    assert check_config(config, Machine(cuda_available=True)) == []
    problems = check_config(config, Machine(cuda_available=False))
    assert [p.field for p in problems] == ["method.type"]
    assert "CUDA GPU" in problems[0].message


def test_every_problem_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = with_changes(
        precision="fp16", output__uri="az://runs/y", strategy={"type": "ddp", "zeroStage": 1}
    )
    code, _, err = run_validate(config, tmp_path, capsys)
    assert code == cli.EXIT_CONFIG_ERROR
    assert all(f"  {field}: " in err for field in ("precision", "output.uri", "strategy.zeroStage"))


def test_a_missing_config_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "--config", str(tmp_path / "absent.yaml")]) == cli.EXIT_CONFIG_ERROR
    assert "--config: " in capsys.readouterr().err
