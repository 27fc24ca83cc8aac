"""LMDeploy: `lmdeploy serve api_server` (TurboMind backend, PyTorch backend when LoRA is used)."""

from __future__ import annotations

from typing import ClassVar

from modelfleet_api.engines.base import EngineCommand, EngineLaunch, Program, ResolvedModel, optional
from modelfleet_api.serving import Dtype, EngineType, ServingRuntimeConfig


class LmdeployCommand(EngineCommand):
    engine: ClassVar[EngineType] = EngineType.LMDEPLOY
    program: ClassVar[Program] = Program("executable", "lmdeploy")

    def build(
        self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None, *, gpu: bool
    ) -> EngineLaunch:
        s = config.engine.settings
        argv = [
            "lmdeploy", "serve", "api_server", str(model.path),
            "--model-name", config.served_model_name,
            "--server-name", config.host,
            "--server-port", str(config.port),
            "--tp", str(s.tensor_parallel_size),
        ]  # fmt: skip
        argv += optional("--session-len", s.max_model_length)
        if s.dtype is not Dtype.AUTO:
            argv += ["--dtype", s.dtype.value]
        argv += optional("--model-format", s.quantization and s.quantization.value)
        # The share of free GPU memory (after the weights) given to the KV cache.
        argv += optional("--cache-max-entry-count", s.gpu_memory_utilization)
        argv += optional("--max-batch-size", s.max_num_seqs)
        if s.prefix_caching:
            argv.append("--enable-prefix-caching")
        if model.lora_adapters:
            argv += ["--backend", "pytorch", "--adapters"]
            argv += [f"{name}={path}" for name, path in model.lora_adapters.items()]
        argv += optional("--api-keys", api_key)
        return EngineLaunch(argv=argv + s.extra_args)
