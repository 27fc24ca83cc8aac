"""The interface every engine adapter implements: from the engine-neutral config to a command line.

An adapter is pure (config in, argv and environment out) so unit tests can pin the exact command
line per engine; the launcher does the side effects.
"""

from __future__ import annotations

import glob
import importlib.util
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from modelfleet_api.serving import GPU_ONLY_ENGINES, EngineSettings, EngineType, ServingRuntimeConfig


class EngineConfigError(ValueError):
    """The config asks for something this engine cannot do; the message names the field."""


class EngineUnavailable(RuntimeError):
    """The engine cannot start on this machine (no GPU, or not installed in this image)."""


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


def settings_field(name: str) -> str:
    """The wire path of an engine setting, for error messages (`engine.settings.maxModelLength`)."""
    alias = EngineSettings.model_fields[name].alias or name
    return f"engine.settings.{alias}"


def has_nvidia_gpu() -> bool:
    """Whether an NVIDIA GPU device is visible (the device plugin mounts /dev/nvidia<N>)."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


class EngineAdapter(ABC):
    engine: ClassVar[EngineType]
    health_path: ClassVar[str] = "/health"
    unsupported_settings: ClassVar[frozenset[str]] = frozenset()
    """Engine-neutral settings (Python field names) this engine has no equivalent for; setting one to
    anything but its default is an error rather than silently ignored."""

    def launch(self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None) -> EngineLaunch:
        """The command that starts the engine for this config."""
        self._check_supported(config.engine.settings)
        return self.build(config, model, api_key)

    @abstractmethod
    def build(self, config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None) -> EngineLaunch:
        """The engine's command line; called with settings this engine supports."""

    @abstractmethod
    def installed(self) -> bool:
        """Whether the engine's program is present in this image."""

    @property
    @abstractmethod
    def program(self) -> str:
        """What `installed` looks for, for the error message."""

    def availability_problem(self) -> str | None:
        """Why the engine cannot start here, or None."""
        if self.engine in GPU_ONLY_ENGINES and not has_nvidia_gpu():
            return (
                f"engine {self.engine} needs an NVIDIA GPU and this machine has none (no /dev/nvidia<N>): "
                f"schedule the ModelDeployment on a GPU pool, or use engine type 'transformers' on CPU"
            )
        if not self.installed():
            return (
                f"engine {self.engine} is not installed in this image ({self.program} not found): "
                f"use the serving image built for {self.engine}"
            )
        return None

    def _check_supported(self, settings: EngineSettings) -> None:
        for name in sorted(self.unsupported_settings):
            value: Any = getattr(settings, name)
            default = EngineSettings.model_fields[name].get_default(call_default_factory=True)
            if value != default:
                raise EngineConfigError(f"{settings_field(name)} is not supported by engine {self.engine}")


class ExecutableAdapter(EngineAdapter):
    """An engine started by a program on PATH."""

    executable: ClassVar[str]

    @property
    def program(self) -> str:
        return self.executable

    def installed(self) -> bool:
        return shutil.which(self.executable) is not None


class PythonModuleAdapter(EngineAdapter):
    """An engine started as `python3 -m MODULE` (installed in the launcher's own environment)."""

    module: ClassVar[str]

    @property
    def program(self) -> str:
        return f"python module {self.module}"

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module.split(".")[0]) is not None


def optional(flag: str, value: object | None) -> list[str]:
    """`[flag, str(value)]`, or nothing when the value is unset."""
    return [] if value is None else [flag, str(value)]
