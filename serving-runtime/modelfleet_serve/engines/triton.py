"""NVIDIA Triton with the TensorRT-LLM backend: `tritonserver` over a model repository.

The TensorRT-LLM engines in the repository were built for a fixed parallelism, precision,
quantization and batch size, so the engine-neutral settings that would change those are rejected
rather than ignored; set them when building the engines. With tensor parallelism N, one
`tritonserver` per rank runs under `mpirun` (as TensorRT-LLM's `launch_triton_server.py` does); only
rank 0 serves the APIs, the other ranks only load the `tensorrt_llm` model.
"""

from __future__ import annotations

from typing import ClassVar

from modelfleet_api.contract import TRITON_GRPC_PORT, TRITON_METRICS_PORT
from modelfleet_api.serving import EngineType, ServingRuntimeConfig

from modelfleet_serve.engines.base import EngineConfigError, EngineLaunch, ExecutableAdapter, ResolvedModel

TRTLLM_MODEL = "tensorrt_llm"
"""Name of the TensorRT-LLM model in the backend's repository layout."""


class TritonTrtllmAdapter(ExecutableAdapter):
    engine: ClassVar[EngineType] = EngineType.TRITON_TRTLLM
    executable: ClassVar[str] = "tritonserver"
    health_path: ClassVar[str] = "/v2/health/ready"
    unsupported_settings: ClassVar[frozenset[str]] = frozenset(
        {"max_model_length", "dtype", "quantization", "gpu_memory_utilization", "max_num_seqs",
         "prefix_caching", "lora_adapters"}
    )  # fmt: skip

    def build(self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None) -> EngineLaunch:
        if api_key:
            raise EngineConfigError(
                "apiKeyEnv is not supported by engine triton-trtllm (no API keys in Triton)"
            )
        if not (model.path / config.served_model_name / "config.pbtxt").is_file():
            raise EngineConfigError(
                f"servedModelName: the Triton model repository {model.path} has no model "
                f"'{config.served_model_name}' (expected {config.served_model_name}/config.pbtxt); name the "
                f"ensemble or BLS model clients call"
            )
        s = config.engine.settings
        common = [f"--model-repository={model.path}", "--disable-auto-complete-config"]
        serving = [
            f"--http-address={config.host}",
            f"--http-port={config.port}",
            f"--grpc-port={TRITON_GRPC_PORT}",
            f"--metrics-port={TRITON_METRICS_PORT}",
        ]
        if s.tensor_parallel_size == 1:
            return EngineLaunch(argv=["tritonserver", *common, *serving, *s.extra_args])
        argv = ["mpirun", "--allow-run-as-root"]
        for rank in range(s.tensor_parallel_size):
            if rank == 0:
                ports = serving
            else:
                ports = ["--allow-http=false", "--allow-grpc=false", "--allow-metrics=false",
                         "--model-control-mode=explicit", f"--load-model={TRTLLM_MODEL}"]  # fmt: skip
            shm = f"--backend-config=python,shm-region-prefix-name=prefix{rank}_"
            argv += ["-n", "1", "tritonserver", *common, *ports, shm, *s.extra_args, ":"]
        return EngineLaunch(argv=argv[:-1])
