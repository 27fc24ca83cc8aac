"""`transformers serve`: the CPU engine, for development, CI and the runtime tests.

`transformers serve MODEL` answers only requests whose `model` equals the MODEL string it was
started with. To make that string the served model name, the engine runs in a directory holding a
link named after the served model that points at the model directory, and is started with the
name as a relative path.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from modelfleet_api.serving import EngineType, ServingRuntimeConfig

from modelfleet_serve.engines.base import (
    EngineConfigError,
    EngineLaunch,
    ExecutableAdapter,
    ResolvedModel,
    has_nvidia_gpu,
)

SERVED_LINKS_DIR = ".served"
"""Directory under the cache dir that holds the served-name links and is the engine's cwd."""


class TransformersAdapter(ExecutableAdapter):
    engine: ClassVar[EngineType] = EngineType.TRANSFORMERS
    executable: ClassVar[str] = "transformers"
    unsupported_settings: ClassVar[frozenset[str]] = frozenset(
        {"tensor_parallel_size", "max_model_length", "gpu_memory_utilization", "max_num_seqs",
         "prefix_caching", "lora_adapters"}
    )  # fmt: skip

    def __init__(self, gpu: bool | None = None) -> None:
        self.gpu = has_nvidia_gpu() if gpu is None else gpu

    def build(self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None) -> EngineLaunch:
        name = config.served_model_name
        if any(c in name for c in "@:") or name.startswith(("/", ".")) or ".." in name.split("/"):
            raise EngineConfigError(
                f"servedModelName {name!r}: engine transformers needs a name without '@' or ':' that is a "
                f"relative path (e.g. 'org/model')"
            )
        s = config.engine.settings
        if api_key:
            raise EngineConfigError("apiKeyEnv is not supported by engine transformers (it has no API keys)")
        workdir = Path(config.cache_dir) / SERVED_LINKS_DIR
        argv = [
            "transformers", "serve", name,
            "--host", config.host,
            "--port", str(config.port),
            "--device", "auto" if self.gpu else "cpu",
            "--dtype", s.dtype.value,
        ]  # fmt: skip
        if s.quantization is not None:  # only bitsandbytes is allowed for this engine
            argv += ["--quantization", "bnb-4bit"]
        if config.model.trust_remote_code:
            argv.append("--trust-remote-code")
        return EngineLaunch(argv=argv + s.extra_args, cwd=workdir, links={workdir / name: model.path})
