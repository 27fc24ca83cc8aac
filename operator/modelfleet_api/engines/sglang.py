"""SGLang: `python3 -m sglang.launch_server`."""

from __future__ import annotations

from typing import ClassVar

from modelfleet_api.engines.base import EngineCommand, EngineLaunch, Program, ResolvedModel, optional
from modelfleet_api.serving import Dtype, EngineType, ServingRuntimeConfig


class SglangCommand(EngineCommand):
    engine: ClassVar[EngineType] = EngineType.SGLANG
    program: ClassVar[Program] = Program("module", "sglang.launch_server")

    def build(
        self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None, *, gpu: bool
    ) -> EngineLaunch:
        s = config.engine.settings
        argv = [
            "python3", "-m", self.program.name,
            "--model-path", str(model.path),
            "--served-model-name", config.served_model_name,
            "--host", config.host,
            "--port", str(config.port),
            "--tp-size", str(s.tensor_parallel_size),
            "--enable-metrics",  # /metrics, which the autoscaler's queries read, is off by default
        ]  # fmt: skip
        argv += optional("--context-length", s.max_model_length)
        if s.dtype is not Dtype.AUTO:
            argv += ["--dtype", s.dtype.value]
        argv += optional("--quantization", s.quantization and s.quantization.value)
        argv += optional("--mem-fraction-static", s.gpu_memory_utilization)
        argv += optional("--max-running-requests", s.max_num_seqs)
        if s.prefix_caching is False:  # SGLang's radix cache is on by default
            argv.append("--disable-radix-cache")
        if model.lora_adapters:
            argv += ["--enable-lora", "--lora-paths"]
            argv += [f"{name}={path}" for name, path in model.lora_adapters.items()]
        if config.model.trust_remote_code:
            argv.append("--trust-remote-code")
        argv += optional("--api-key", api_key)
        return EngineLaunch(argv=argv + s.extra_args)
