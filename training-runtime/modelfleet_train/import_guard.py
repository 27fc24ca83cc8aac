"""Keeps DeepSpeed's autotuner from importing MLflow into every training process.

`deepspeed.runtime.config` imports `deepspeed.autotuning`, whose autotuner runs `import mlflow` (in a
try/except ImportError) whenever MLflow is installed, and it is here: the runtime's tracking can log to
MLflow. That import costs about 7 CPU seconds, on every rank of every start, and not only under the
DeepSpeed strategy: accelerate imports deepspeed when it is installed (transformers' `save_pretrained`
unwraps the model through it), so DDP and FSDP runs pay it too. The autotuner only runs under the
`deepspeed --autotuning` launcher, never in this runtime.

The guard is a meta-path finder that refuses `mlflow` to that one module, which then records
``has_mlflow = False``; every other importer, the runtime's own MLflow tracking included, gets MLflow as
usual. Written by hand: neither DeepSpeed nor MLflow offers a switch for this, and
`importlib.util.LazyLoader` does not help (on Python 3.11 an `import` of a module already in
``sys.modules`` reads its ``__spec__``, which loads a lazy module at once).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

GUARDED = "mlflow"
IMPORTER = "deepspeed.autotuning.autotuner"


class MlflowHiddenFromDeepSpeedAutotuner(importlib.abc.MetaPathFinder):
    """Raises ImportError for ``mlflow`` when the module importing it is ``IMPORTER``; otherwise
    leaves the import to the other finders."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == GUARDED and _importer_is(IMPORTER):
            raise ModuleNotFoundError(f"{GUARDED} is not offered to {IMPORTER}", name=GUARDED)
        return None


def _importer_is(module: str) -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == module:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def install() -> None:
    """Put the guard first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, MlflowHiddenFromDeepSpeedAutotuner) for finder in sys.meta_path):
        sys.meta_path.insert(0, MlflowHiddenFromDeepSpeedAutotuner())
