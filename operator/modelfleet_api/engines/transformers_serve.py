"""`transformers serve`: the CPU engine, for development, CI and the runtime tests.

`transformers serve MODEL` answers only requests whose `model` equals the MODEL string it was
started with. To make that string the served model name, the engine runs in a directory holding a
link named after the served model that points at the model directory, and is started with the
name as a relative path (``serving.SERVED_NAME_AS_RELATIVE_PATH`` says which names work).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from modelfleet_api.engines.base import EngineCommand, EngineLaunch, Program, ResolvedModel
from modelfleet_api.serving import EngineType, ServingRuntimeConfig

SERVED_LINKS_DIR = ".served"
"""Directory under the cache dir that holds the served-name links and is the engine's cwd."""


class TransformersCommand(EngineCommand):
    engine: ClassVar[EngineType] = EngineType.TRANSFORMERS
    program: ClassVar[Program] = Program("executable", "transformers")

    def build(
        self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None, *, gpu: bool
    ) -> EngineLaunch:
        name = config.served_model_name
        s = config.engine.settings
        workdir = Path(config.cache_dir) / SERVED_LINKS_DIR
        argv = [
            "transformers", "serve", name,
            "--host", config.host,
            "--port", str(config.port),
            "--device", "auto" if gpu else "cpu",
            "--dtype", s.dtype.value,
        ]  # fmt: skip
        if s.quantization is not None:  # only bitsandbytes is allowed for this engine
            argv += ["--quantization", "bnb-4bit"]
        if config.model.trust_remote_code:
            argv.append("--trust-remote-code")
        return EngineLaunch(argv=argv + s.extra_args, cwd=workdir, links={workdir / name: model.path})
