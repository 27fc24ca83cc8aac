"""What the launcher checks on the host before it starts an engine.

The command line itself is the engine command contract in ``modelfleet_api.engines`` (pure, shared
with the operator); what only the pod can know lives here: whether a GPU is visible, whether the
engine's program is in this image, whether a Triton model repository has the served model, and
whether the engine's own argument parser accepts the final command line (``vllm_args``).
"""

from __future__ import annotations

import glob
import importlib.util
import shutil

from modelfleet_api.engines import command_for
from modelfleet_api.engines.base import Program, ResolvedModel
from modelfleet_api.serving import GPU_ONLY_ENGINES, EngineType, ServingRuntimeConfig


def has_nvidia_gpu() -> bool:
    """Whether an NVIDIA GPU device is visible (the device plugin mounts /dev/nvidia<N>)."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def installed(program: Program) -> bool:
    """Whether the program is present in this image."""
    if program.kind == "executable":
        return shutil.which(program.name) is not None
    return importlib.util.find_spec(program.name.split(".")[0]) is not None


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
