"""The engine command contract (``modelfleet_api.engines``): the exact command line each engine's
builder emits, per engine and settings; what the support table refuses; and the launcher's host
checks (``modelfleet_serve.engines``)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api.engines import COMMANDS, command_for
from modelfleet_api.engines.base import EngineConfigError, EngineLaunch, ResolvedModel
from modelfleet_api.serving import EngineType, ServingRuntimeConfig
from modelfleet_serve import engines as host
from modelfleet_serve import launcher
from modelfleet_serve.engines import parser_check
from pydantic import ValidationError

pytestmark = pytest.mark.unit

MODEL = ResolvedModel(path=Path("/models/llama"))
WITH_LORA = ResolvedModel(
    path=Path("/models/llama"), lora_adapters={"sql": Path("/models/sql"), "chat": Path("/c")}
)
LORA_SETTINGS = [{"name": "sql", "uri": "az://adapters/sql"}, {"name": "chat", "uri": "/c"}]
FULL_SETTINGS: dict[str, Any] = {
    "tensorParallelSize": 2,
    "maxModelLength": 8192,
    "dtype": "bfloat16",
    "quantization": "awq",
    "gpuMemoryUtilization": 0.85,
    "maxNumSeqs": 128,
    "prefixCaching": False,
    "extraArgs": ["--seed", "7"],
}


def config(
    engine: str, settings: dict[str, Any] | None = None, trust_remote_code: bool = False, name: str = "llama"
) -> ServingRuntimeConfig:
    return ServingRuntimeConfig.model_validate(
        {
            "model": {"uri": "/models/llama", "trustRemoteCode": trust_remote_code},
            "servedModelName": name,
            "engine": {"type": engine, "settings": settings or {}},
            "cacheDir": "/cache",
        }
    )


def launch(engine: str, settings: dict[str, Any] | None = None, model: ResolvedModel = MODEL,
           api_key: str | None = None, trust_remote_code: bool = False,
           gpu: bool = True) -> EngineLaunch:  # fmt: skip
    return command_for(EngineType(engine)).launch(
        config(engine, settings, trust_remote_code), model, api_key, gpu=gpu
    )


def test_every_engine_has_a_command() -> None:
    assert set(COMMANDS) == set(EngineType)


def test_vllm_defaults() -> None:
    assert launch("vllm") == EngineLaunch(
        argv=["vllm", "serve", "/models/llama", "--served-model-name", "llama", "--host", "0.0.0.0",
              "--port", "8000", "--tensor-parallel-size", "1"]
    )  # fmt: skip


def test_vllm_every_setting() -> None:
    got = launch("vllm", {**FULL_SETTINGS, "loraAdapters": LORA_SETTINGS}, WITH_LORA, "secret", True)
    assert got.argv == shlex.split(
        "vllm serve /models/llama --served-model-name llama --host 0.0.0.0 --port 8000 "
        "--tensor-parallel-size 2 --max-model-len 8192 --dtype bfloat16 --quantization awq "
        "--gpu-memory-utilization 0.85 --max-num-seqs 128 --no-enable-prefix-caching --enable-lora "
        "--max-loras 2 --lora-modules sql=/models/sql chat=/c --trust-remote-code --seed 7"
    )
    assert got.env == {"VLLM_API_KEY": "secret"}
    assert "--enable-prefix-caching" in launch("vllm", {"prefixCaching": True}).argv


def test_tgi_every_setting() -> None:
    got = launch("tgi", {**FULL_SETTINGS, "loraAdapters": LORA_SETTINGS}, WITH_LORA, "secret", True)
    assert got.argv == shlex.split(
        "text-generation-launcher --model-id /models/llama --served-model-name llama --hostname 0.0.0.0 "
        "--port 8000 --num-shard 2 --max-total-tokens 8192 --dtype bfloat16 --quantize awq "
        "--cuda-memory-fraction 0.85 --max-concurrent-requests 128 --lora-adapters "
        "sql=/models/sql,chat=/c --trust-remote-code --seed 7"
    )
    assert got.env == {"PREFIX_CACHING": "0", "API_KEY": "secret"}


def test_sglang_every_setting() -> None:
    got = launch("sglang", {**FULL_SETTINGS, "loraAdapters": LORA_SETTINGS}, WITH_LORA, "secret", True)
    assert got.argv == shlex.split(
        "python3 -m sglang.launch_server --model-path /models/llama --served-model-name llama --host "
        "0.0.0.0 --port 8000 --tp-size 2 --enable-metrics --context-length 8192 --dtype bfloat16 "
        "--quantization awq --mem-fraction-static 0.85 --max-running-requests 128 --disable-radix-cache "
        "--enable-lora --lora-paths sql=/models/sql chat=/c --trust-remote-code --api-key secret --seed 7"
    )
    assert "--disable-radix-cache" not in launch("sglang", {"prefixCaching": True}).argv


def test_lmdeploy_every_setting() -> None:
    got = launch("lmdeploy", {**FULL_SETTINGS, "prefixCaching": True}, MODEL, "secret")
    assert got.argv == shlex.split(
        "lmdeploy serve api_server /models/llama --model-name llama --server-name 0.0.0.0 --server-port "
        "8000 --tp 2 --session-len 8192 --dtype bfloat16 --model-format awq --cache-max-entry-count 0.85 "
        "--max-batch-size 128 --enable-prefix-caching --api-keys secret --seed 7"
    )


def test_lmdeploy_lora_switches_to_the_pytorch_backend() -> None:
    got = launch("lmdeploy", {"loraAdapters": LORA_SETTINGS}, WITH_LORA)
    assert got.argv[-5:] == ["--backend", "pytorch", "--adapters", "sql=/models/sql", "chat=/c"]
    with pytest.raises(ValidationError, match=r"engine\.settings\.loraAdapters: lmdeploy serves LoRA"):
        launch("lmdeploy", {"loraAdapters": LORA_SETTINGS, "quantization": "awq"}, WITH_LORA)


@pytest.mark.parametrize("engine", ["tgi", "lmdeploy"])
def test_float32_is_refused_where_the_engine_lacks_it(engine: str) -> None:
    with pytest.raises(
        ValidationError, match=r"engine\.settings\.dtype: \S+ supports auto, bfloat16, float16 only"
    ):
        config(engine, {"dtype": "float32"})


def test_the_builders_refuse_what_the_support_table_refuses_even_unvalidated() -> None:
    """A config built without validation (``model_construct``) still cannot reach a builder with a
    setting its engine lacks: ``launch`` checks the support table itself."""
    bad = config("vllm").model_copy(deep=True)
    bad.engine = bad.engine.model_construct(type=EngineType.TGI, settings=bad.engine.settings.model_copy(
        update={"dtype": "float32"}))  # fmt: skip
    with pytest.raises(EngineConfigError, match=r"engine\.settings\.dtype"):
        command_for(EngineType.TGI).launch(bad, MODEL, None, gpu=True)


def triton_repository(tmp_path: Path) -> ResolvedModel:
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.pbtxt").write_text('name: "llama"\n')
    return ResolvedModel(path=tmp_path)


def test_triton_single_gpu(tmp_path: Path) -> None:
    repo = triton_repository(tmp_path)
    assert launch("triton-trtllm", {}, repo).argv == [
        "tritonserver", f"--model-repository={tmp_path}", "--disable-auto-complete-config",
        "--http-address=0.0.0.0", "--http-port=8000", "--grpc-port=8001", "--metrics-port=8002",
    ]  # fmt: skip


def test_triton_tensor_parallel_runs_one_server_per_rank_under_mpirun(tmp_path: Path) -> None:
    repo = triton_repository(tmp_path)
    common = ["tritonserver", f"--model-repository={tmp_path}", "--disable-auto-complete-config"]
    assert launch("triton-trtllm", {"tensorParallelSize": 2}, repo).argv == [
        "mpirun", "--allow-run-as-root",
        "-n", "1", *common, "--http-address=0.0.0.0", "--http-port=8000", "--grpc-port=8001",
        "--metrics-port=8002", "--backend-config=python,shm-region-prefix-name=prefix0_", ":",
        "-n", "1", *common, "--allow-http=false", "--allow-grpc=false", "--allow-metrics=false",
        "--model-control-mode=explicit", "--load-model=tensorrt_llm",
        "--backend-config=python,shm-region-prefix-name=prefix1_",
    ]  # fmt: skip


def test_triton_refuses_build_time_settings_and_unknown_models(tmp_path: Path) -> None:
    with pytest.raises(
        ValidationError, match=r"engine.settings.maxModelLength is not supported by engine tri"
    ):
        config("triton-trtllm", {"maxModelLength": 4096})
    assert host.model_problem(config("triton-trtllm"), triton_repository(tmp_path)) is None
    problem = host.model_problem(config("triton-trtllm"), ResolvedModel(path=tmp_path / "empty"))
    assert problem is not None and problem.startswith("servedModelName: the Triton model repository")
    assert host.model_problem(config("vllm"), ResolvedModel(path=tmp_path / "empty")) is None


def test_transformers_on_cpu_links_the_served_name_to_the_model() -> None:
    got = launch("transformers", {"dtype": "float32"}, gpu=False)
    assert got == EngineLaunch(
        argv=["transformers", "serve", "llama", "--host", "0.0.0.0", "--port", "8000", "--device", "cpu",
              "--dtype", "float32"],
        cwd=Path("/cache/.served"),
        links={Path("/cache/.served/llama"): Path("/models/llama")},
    )  # fmt: skip


def test_transformers_on_gpu_lets_it_pick_the_device() -> None:
    assert launch("transformers", gpu=True).argv[7:9] == ["--device", "auto"]


def test_transformers_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValidationError, match=r"engine\.settings\.tensorParallelSize is not supported"):
        config("transformers", {"tensorParallelSize": 2})
    with pytest.raises(EngineConfigError, match="apiKeyEnv"):
        launch("transformers", api_key="secret")
    for name in ("org/model:main", "model@v1", "/abs/model", "../up", "org/../up", ".hidden"):
        with pytest.raises(EngineConfigError, match=r"servedModelName .*relative path"):
            command_for(EngineType.TRANSFORMERS).launch(
                config("transformers", name=name), MODEL, None, gpu=False
            )
    assert launch("transformers", gpu=False).argv[2] == "llama"


def test_gpu_engine_without_gpu_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "has_nvidia_gpu", lambda: False)
    problem = host.availability_problem(EngineType.VLLM)
    assert problem is not None and "needs an NVIDIA GPU" in problem and "transformers" in problem


def test_engine_not_in_the_image_says_which_program(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "has_nvidia_gpu", lambda: True)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert host.availability_problem(EngineType.TGI) == (
        "engine tgi is not installed in this image (text-generation-launcher not found): use the serving "
        "image built for tgi"
    )
    problem = host.availability_problem(EngineType.SGLANG)
    assert problem is not None and "python module sglang.launch_server not found" in problem


def test_vllm_parser_missing_is_said_plainly() -> None:
    """vLLM's parser script run by an interpreter without vLLM (this venv's; the runtime tier runs it
    in a venv that has vLLM): the check says that it cannot run, rather than passing the command line
    unchecked."""
    with pytest.raises(parser_check.ParserUnavailable, match="vLLM's argument parser cannot be imported"):
        parser_check.argv_problem(
            EngineType.VLLM, ["vllm", "serve", "/m", "--seed", "7"], ["--seed", "7"], python=sys.executable
        )


def stand_in_parser(tmp_path: Path, refused: dict[str, str]) -> str:
    """An interpreter standing in for an engine's (its parser script is not run): it speaks the
    parsers' protocol and refuses every command line holding one of ``refused``'s flags."""
    fake = tmp_path / "python3"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\nrefused = {refused!r}\n"
        "argvs = json.load(sys.stdin)['argvs']\n"
        "found = [next((m for f, m in refused.items() if f in argv), None) for argv in argvs]\n"
        "json.dump({'refusals': found}, sys.stdout)\n"
    )
    fake.chmod(0o755)
    return str(fake)


def test_parser_check_names_the_extra_args_or_the_release_mismatch(tmp_path: Path) -> None:
    """The stand-in parser refuses ``--bad`` and ``--old``: a refused extra arg is the user's field; a
    refused generated flag is a mismatch between modelfleet and the image's engine release."""
    python = stand_in_parser(
        tmp_path, {"--bad": "unrecognized arguments: --bad", "--old": "unrecognized arguments: --old"}
    )
    argv = ["vllm", "serve", "/m", "--port", "8000"]
    assert parser_check.argv_problem(EngineType.VLLM, [*argv, "--seed", "7"], ["--seed", "7"], python) is None
    assert parser_check.argv_problem(EngineType.VLLM, [*argv, "--bad"], ["--bad"], python) == (
        "engine.settings.extraArgs: vLLM refuses ['--bad']: unrecognized arguments: --bad"
    )
    assert parser_check.argv_problem(EngineType.VLLM, [*argv, "--old"], [], python) == (
        "this vLLM release refuses the command line modelfleet generates (the serving image and "
        "modelfleet do not match): unrecognized arguments: --old"
    )


def test_engines_without_a_python_parser_are_not_checked(tmp_path: Path) -> None:
    """TGI and Triton keep pinned command lines: nothing runs for them, not even an interpreter."""
    for engine in (EngineType.TGI, EngineType.TRITON_TRTLLM, EngineType.TRANSFORMERS):
        assert parser_check.argv_problem(engine, ["x", "--bad"], ["--bad"], str(tmp_path / "none")) is None


def test_download_resolves_the_model_and_names_a_missing_one(tmp_path: Path) -> None:
    """`modelfleet-serve download` (the init container) resolves without starting anything."""
    (tmp_path / "model").mkdir()
    path = tmp_path / "serve.yaml"
    path.write_text(ServingRuntimeConfig.model_validate(
        {"model": {"uri": str(tmp_path / "model")}, "servedModelName": "m", "cacheDir": str(tmp_path)}
    ).to_yaml())  # fmt: skip
    assert launcher.main(["download", "--config", str(path)]) == 0
    path.write_text(path.read_text().replace(str(tmp_path / "model"), str(tmp_path / "missing")))
    assert launcher.main(["download", "--config", str(path)]) == launcher.EXIT_CONFIG_ERROR
