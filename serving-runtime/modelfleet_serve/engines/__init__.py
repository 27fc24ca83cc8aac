"""What the launcher checks on the host before it starts an engine.

The command line itself is the engine command contract in ``modelfleet_api.engines`` (pure, shared
with the operator); what only the pod can know lives here: whether a GPU is visible, whether the
engine's program is in this image, whether a Triton model repository has the served model, and
whether the engine's own argument parser accepts the final command line (``parser_check``).
"""

from __future__ import annotations

import glob
import shutil
import subprocess

from modelfleet_api.engines import command_for
from modelfleet_api.engines.base import Program, ResolvedModel
from modelfleet_api.serving import GPU_ONLY_ENGINES, EngineType, ServingRuntimeConfig


def has_nvidia_gpu() -> bool:
    """Whether an NVIDIA GPU device is visible (the device plugin mounts /dev/nvidia<N>)."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


ENGINE_PYTHON = "python3"
"""The image's interpreter, where a Python engine is installed (the launcher has a venv of its own)."""


def installed(program: Program, python: str = ENGINE_PYTHON) -> bool:
    """Whether the program is present in this image: an executable on PATH, or a module the image's
    ``python3`` finds."""
    if program.kind == "executable":
        return shutil.which(program.name) is not None
    package = program.name.split(".")[0]
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
    try:
        return subprocess.run([python, "-c", probe, package], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def availability_problem(engine: EngineType) -> str | None:
    """Why the engine cannot start here, or None."""
    if engine in GPU_ONLY_ENGINES and not has_nvidia_gpu():
        return (
            f"engine {engine} needs an NVIDIA GPU and this machine has none (no /dev/nvidia<N>): "
            f"schedule the ModelDeployment on a GPU pool, or use engine type 'transformers' on CPU"
        )
    program = command_for(engine).program
    if not installed(program):
        return (
            f"engine {engine} is not installed in this image ({program} not found): use the serving "
            f"image built for {engine}"
        )
    return None


def model_problem(config: ServingRuntimeConfig, model: ResolvedModel) -> str | None:
    """Why the resolved model cannot be served by this config's engine, or None.

    Triton loads the model named in requests from its repository, so the served name must be a
    model of the repository (the ensemble or BLS model clients call).
    """
    if config.engine.type is not EngineType.TRITON_TRTLLM:
        return None
    name = config.served_model_name
    if (model.path / name / "config.pbtxt").is_file():
        return None
    return (
        f"servedModelName: the Triton model repository {model.path} has no model '{name}' (expected "
        f"{name}/config.pbtxt); name the ensemble or BLS model clients call"
    )
