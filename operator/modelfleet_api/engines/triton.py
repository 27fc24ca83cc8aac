"""NVIDIA Triton with the TensorRT-LLM backend: `tritonserver` over a model repository.

The TensorRT-LLM engines in the repository were built for a fixed parallelism, precision,
quantization and batch size, so the engine-neutral settings that would change those are refused
(``serving.ENGINE_SUPPORT``) rather than ignored; set them when building the engines. With tensor
parallelism N, one `tritonserver` per rank runs under `mpirun` (as TensorRT-LLM's
`launch_triton_server.py` does); only rank 0 serves the APIs, the other ranks only load the
`tensorrt_llm` model.
"""

from __future__ import annotations

from typing import ClassVar

from modelfleet_api.contract import TRITON_GRPC_PORT, TRITON_METRICS_PORT
from modelfleet_api.engines.base import EngineCommand, EngineLaunch, Program, ResolvedModel
from modelfleet_api.serving import EngineType, ServingRuntimeConfig

TRTLLM_MODEL = "tensorrt_llm"
"""Name of the TensorRT-LLM model in the backend's repository layout."""


class TritonTrtllmCommand(EngineCommand):
    engine: ClassVar[EngineType] = EngineType.TRITON_TRTLLM
    program: ClassVar[Program] = Program("executable", "tritonserver")
    health_path: ClassVar[str] = "/v2/health/ready"

    def build(
        self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None, *, gpu: bool
    ) -> EngineLaunch:
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
