"""The interface of every engine's command builder: from the engine-neutral config to a command line.

A builder is pure (config in, argv and environment out; no file, device or PATH lookups), so the
operator checks a spec with the very code the launcher starts the engine with, and unit tests pin the
exact command line per engine. What depends on the host (a GPU present, the engine installed, a
Triton model repository's layout) is the serving runtime's (``modelfleet_serve.engines``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from modelfleet_api.serving import (
    ENGINE_SUPPORT,
    EngineType,
    ServingRuntimeConfig,
    served_name_problem,
    settings_support_problem,
)


class EngineConfigError(ValueError):
    """The config asks for something this engine cannot do; the message names the field."""


@dataclass(frozen=True)
class ResolvedModel:
    """Local paths of everything the engine loads."""

    path: Path
    """The model (for Triton: the model repository)."""
    lora_adapters: dict[str, Path] = field(default_factory=dict)
    """Adapter name to local adapter directory, in the config's order."""


@dataclass(frozen=True)
class EngineLaunch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Variables added to the launcher's environment."""
    cwd: Path | None = None
    """Working directory of the engine (created if missing)."""
    links: dict[Path, Path] = field(default_factory=dict)
    """Symbolic links to create before starting (link path to target)."""


@dataclass(frozen=True)
class Program:
    """What the serving image must have for an engine to start."""

    kind: Literal["executable", "module"]
    """An executable on PATH, or a Python module of the launcher's own environment."""
    name: str

    def __str__(self) -> str:
        return self.name if self.kind == "executable" else f"python module {self.name}"


class EngineCommand(ABC):
    """One engine's command contract: its program, health path and command line."""

    engine: ClassVar[EngineType]
    program: ClassVar[Program]
    health_path: ClassVar[str] = "/health"
    """HTTP path that answers 200 once the engine serves (probes and the launcher both use it)."""

    def launch(
        self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None, *, gpu: bool
    ) -> EngineLaunch:
        """The command that starts the engine for this config; ``gpu``: whether the pod has one."""
        problem = settings_support_problem(self.engine, config.engine.settings) or served_name_problem(
            self.engine, config.served_model_name
        )
        if problem is not None:
            raise EngineConfigError(problem)
        if api_key and not ENGINE_SUPPORT[self.engine].api_key:
            raise EngineConfigError(
                f"apiKeyEnv is not supported by engine {self.engine} (it has no API keys)"
            )
        return self.build(config, model, api_key, gpu=gpu)

    @abstractmethod
    def build(
        self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None, *, gpu: bool
    ) -> EngineLaunch:
        """The engine's command line; called with settings this engine supports."""


def optional(flag: str, value: object | None) -> list[str]:
    """`[flag, str(value)]`, or nothing when the value is unset."""
    return [] if value is None else [flag, str(value)]
