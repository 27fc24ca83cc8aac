"""Hugging Face Text Generation Inference: `text-generation-launcher`."""

from __future__ import annotations

from typing import ClassVar

from modelfleet_api.engines.base import EngineCommand, EngineLaunch, Program, ResolvedModel, optional
from modelfleet_api.serving import Dtype, EngineType, ServingRuntimeConfig


class TgiCommand(EngineCommand):
    engine: ClassVar[EngineType] = EngineType.TGI
    program: ClassVar[Program] = Program("executable", "text-generation-launcher")

    def build(
        self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None, *, gpu: bool
    ) -> EngineLaunch:
        s = config.engine.settings
        argv = [
            "text-generation-launcher",
            "--model-id", str(model.path),
            "--served-model-name", config.served_model_name,
            "--hostname", config.host,
            "--port", str(config.port),
            "--num-shard", str(s.tensor_parallel_size),
        ]  # fmt: skip
        argv += optional("--max-total-tokens", s.max_model_length)
        if s.dtype is not Dtype.AUTO:
            argv += ["--dtype", s.dtype.value]
        argv += optional("--quantize", s.quantization and s.quantization.value)
        argv += optional("--cuda-memory-fraction", s.gpu_memory_utilization)
        # TGI batches continuously up to its token budget; the closest per-sequence limit is the
        # router's cap on concurrent requests.
        argv += optional("--max-concurrent-requests", s.max_num_seqs)
        if model.lora_adapters:
            argv += ["--lora-adapters", ",".join(f"{n}={p}" for n, p in model.lora_adapters.items())]
        if config.model.trust_remote_code:
            argv.append("--trust-remote-code")
        env: dict[str, str] = {}
        if s.prefix_caching is not None:  # TGI 3 takes this from the environment only
            env["PREFIX_CACHING"] = "1" if s.prefix_caching else "0"
        if api_key:
            env["API_KEY"] = api_key
        return EngineLaunch(argv=argv + s.extra_args, env=env)
