"""Fetches and builds, into the cache, what the runtime tier would otherwise make on first use: the
engines' venvs (vLLM, SGLang and LMDeploy at the releases their images pin: about 15 GB of wheels),
Azurite, the Pushgateway and DeepSpeed's CPU communication op.

``make test`` runs this during set-up, beside the Go builds (CPU-bound), so a fresh machine spends
that download and install time while the compilers run, not inside a test session. Each step is
skipped when its result is in the cache, so a warm run does nothing here. The fixtures keep making
them on first use too, for a tier run on its own (``make test-runtime``).

Usage: ``python -m tests.runtime.prepare``
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from tests.runtime.conftest import TORCH_EXTENSIONS, build_pushgateway, install_azurite
from tests.runtime.engine_venv import LMDEPLOY, SGLANG, VLLM

SHM_OP = "deepspeed_shm_comm"


def build_deepspeed_shm_op() -> None:
    """DeepSpeed's JIT-compiled shared-memory op (``deepspeed_shm_comm``), which a DeepSpeed run on CPU
    builds on its first start (about 40 s) into ``TORCH_EXTENSIONS_DIR``; the tests point it at
    ``TORCH_EXTENSIONS`` (the Makefile exports the same directory). Skipped when built: importing
    DeepSpeed alone takes seconds."""
    extensions = Path(os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(TORCH_EXTENSIONS)))
    if (extensions / SHM_OP / f"{SHM_OP}.so").exists():
        return
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder

    ShareMemCommBuilder().load(verbose=False)


STEPS: dict[str, Callable[[], object]] = {
    "vLLM venv": VLLM.python,
    "SGLang venv": SGLANG.python,
    "LMDeploy venv": LMDEPLOY.python,
    "Azurite": install_azurite,
    "Pushgateway": build_pushgateway,
    "DeepSpeed shm op": build_deepspeed_shm_op,
}


def main() -> None:
    for name, step in STEPS.items():
        start = time.monotonic()
        step()
        print(f"prepare: {name} ready ({time.monotonic() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
