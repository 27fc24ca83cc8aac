"""vLLM: `vllm serve` (OpenAI-compatible server)."""

from __future__ import annotations

from typing import ClassVar

from modelfleet_api.engines.base import EngineCommand, EngineLaunch, Program, ResolvedModel, optional
from modelfleet_api.serving import Dtype, EngineType, ServingRuntimeConfig


class VllmCommand(EngineCommand):
    engine: ClassVar[EngineType] = EngineType.VLLM
    program: ClassVar[Program] = Program("executable", "vllm")

    def build(
        self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None, *, gpu: bool
    ) -> EngineLaunch:
        s = config.engine.settings
        argv = [
            "vllm", "serve", str(model.path),
            "--served-model-name", config.served_model_name,
            "--host", config.host,
            "--port", str(config.port),
            "--tensor-parallel-size", str(s.tensor_parallel_size),
        ]  # fmt: skip
        argv += optional("--max-model-len", s.max_model_length)
        if s.dtype is not Dtype.AUTO:
            argv += ["--dtype", s.dtype.value]
        argv += optional("--quantization", s.quantization and s.quantization.value)
        argv += optional("--gpu-memory-utilization", s.gpu_memory_utilization)
        argv += optional("--max-num-seqs", s.max_num_seqs)
        if s.prefix_caching is not None:
            argv.append("--enable-prefix-caching" if s.prefix_caching else "--no-enable-prefix-caching")
        if model.lora_adapters:
            argv += ["--enable-lora", "--max-loras", str(len(model.lora_adapters)), "--lora-modules"]
            argv += [f"{name}={path}" for name, path in model.lora_adapters.items()]
        if config.model.trust_remote_code:
            argv.append("--trust-remote-code")
        # vLLM reads the key from VLLM_API_KEY, which keeps it out of the process list.
        env = {"VLLM_API_KEY": api_key} if api_key else {}
        return EngineLaunch(argv=argv + s.extra_args, env=env)
