"""The exact command line each engine adapter emits, per engine and settings."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api.serving import EngineType, ServingRuntimeConfig
from modelfleet_serve.engines import ADAPTERS, adapter_for
from modelfleet_serve.engines.base import EngineConfigError, EngineLaunch, ResolvedModel
from modelfleet_serve.engines.transformers_serve import TransformersAdapter

pytestmark = pytest.mark.unit

MODEL = ResolvedModel(path=Path("/models/llama"))
WITH_LORA = ResolvedModel(
    path=Path("/models/llama"), lora_adapters={"sql": Path("/models/sql"), "chat": Path("/c")}
)
LORA_SETTINGS = [{"name": "sql", "uri": "az://a/sql"}, {"name": "chat", "uri": "/c"}]
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
    engine: str, settings: dict[str, Any] | None = None, trust_remote_code: bool = False
) -> ServingRuntimeConfig:
    return ServingRuntimeConfig.model_validate(
        {
            "model": {"uri": "/models/llama", "trustRemoteCode": trust_remote_code},
            "servedModelName": "llama",
            "engine": {"type": engine, "settings": settings or {}},
            "cacheDir": "/cache",
        }
    )


def launch(engine: str, settings: dict[str, Any] | None = None, model: ResolvedModel = MODEL,
           api_key: str | None = None, trust_remote_code: bool = False) -> EngineLaunch:  # fmt: skip
    return adapter_for(EngineType(engine)).launch(config(engine, settings, trust_remote_code), model, api_key)


def test_every_engine_has_an_adapter() -> None:
    assert set(ADAPTERS) == set(EngineType)


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
        "0.0.0.0 --port 8000 --tp-size 2 --context-length 8192 --dtype bfloat16 --quantization awq "
        "--mem-fraction-static 0.85 --max-running-requests 128 --disable-radix-cache --enable-lora "
        "--lora-paths sql=/models/sql chat=/c --trust-remote-code --api-key secret --seed 7"
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
    with pytest.raises(EngineConfigError, match=r"engine\.settings\.loraAdapters"):
        launch("lmdeploy", {"loraAdapters": LORA_SETTINGS, "quantization": "awq"}, WITH_LORA)


@pytest.mark.parametrize("engine", ["tgi", "lmdeploy"])
def test_float32_is_refused_where_the_engine_lacks_it(engine: str) -> None:
    with pytest.raises(EngineConfigError, match=r"engine\.settings\.dtype"):
        launch(engine, {"dtype": "float32"})


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
    with pytest.raises(EngineConfigError, match=r"engine.settings.maxModelLength is not supported"):
        launch("triton-trtllm", {"maxModelLength": 4096}, triton_repository(tmp_path))
    with pytest.raises(EngineConfigError, match="servedModelName"):
        launch("triton-trtllm", {}, ResolvedModel(path=tmp_path / "empty"))


def test_transformers_on_cpu_links_the_served_name_to_the_model() -> None:
    got = TransformersAdapter(gpu=False).launch(config("transformers", {"dtype": "float32"}), MODEL, None)
    assert got == EngineLaunch(
        argv=["transformers", "serve", "llama", "--host", "0.0.0.0", "--port", "8000", "--device", "cpu",
              "--dtype", "float32"],
        cwd=Path("/cache/.served"),
        links={Path("/cache/.served/llama"): Path("/models/llama")},
    )  # fmt: skip


def test_transformers_refuses_what_it_cannot_do() -> None:
    adapter = TransformersAdapter(gpu=False)
    with pytest.raises(EngineConfigError, match=r"engine\.settings\.tensorParallelSize is not supported"):
        adapter.launch(config("transformers", {"tensorParallelSize": 2}), MODEL, None)
    with pytest.raises(EngineConfigError, match="apiKeyEnv"):
        adapter.launch(config("transformers"), MODEL, "secret")


def test_gpu_engine_without_gpu_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("modelfleet_serve.engines.base.has_nvidia_gpu", lambda: False)
    problem = adapter_for(EngineType.VLLM).availability_problem()
    assert problem is not None and "needs an NVIDIA GPU" in problem and "transformers" in problem
