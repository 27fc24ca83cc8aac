"""The engine command contract: one command builder per engine behind one interface.

The operator (to refuse what an engine cannot do and to probe the right health path) and the
launcher (to start the engine) both use these builders, so the two cannot disagree.
"""

from __future__ import annotations

from modelfleet_api.engines.base import EngineCommand
from modelfleet_api.engines.lmdeploy import LmdeployCommand
from modelfleet_api.engines.sglang import SglangCommand
from modelfleet_api.engines.tgi import TgiCommand
from modelfleet_api.engines.transformers_serve import TransformersCommand
from modelfleet_api.engines.triton import TritonTrtllmCommand
from modelfleet_api.engines.vllm import VllmCommand
from modelfleet_api.serving import EngineType

COMMANDS: dict[EngineType, EngineCommand] = {
    command.engine: command
    for command in (
        VllmCommand(),
        TgiCommand(),
        SglangCommand(),
        LmdeployCommand(),
        TritonTrtllmCommand(),
        TransformersCommand(),
    )
}

HEALTH_PATHS: dict[EngineType, str] = {engine: command.health_path for engine, command in COMMANDS.items()}
"""The path each engine's health endpoint answers on (readiness probes and the launcher's watch)."""


def command_for(engine: EngineType) -> EngineCommand:
    return COMMANDS[engine]
