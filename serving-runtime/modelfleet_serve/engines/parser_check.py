"""The final engine command line, checked by the engine's own argument parser before the engine starts.

A typo in `engine.settings.extraArgs` (`--max-modle-len`) would otherwise surface as a crash-looping
pod whose log ends in an argparse error; checked here, the launcher exits at once with the flag named
in the container's termination message. Each parser runs in the engine's interpreter, the image's
``python3`` (``parsers``), because the launcher's own venv cannot import the engine.

The generated flags are checked on their own first, so a flag this engine release renamed is reported
as an incompatibility between modelfleet and the image rather than blamed on the user's extraArgs.
Checked: vLLM, SGLang and LMDeploy. Engines whose parser is not a Python package (TGI's launcher is
Rust, Triton's server C++) keep command lines pinned by the unit tests instead (see their builders in
``modelfleet_api.engines``); `transformers serve`'s parser is run by its runtime test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from modelfleet_api.serving import EngineType

from modelfleet_serve.engines import ENGINE_PYTHON, parsers

EXTRA_ARGS_FIELD = "engine.settings.extraArgs"
PARSERS: dict[EngineType, tuple[str, str]] = {
    EngineType.VLLM: ("vllm_cli", "vLLM"),
    EngineType.SGLANG: ("sglang_cli", "SGLang"),
    EngineType.LMDEPLOY: ("lmdeploy_cli", "LMDeploy"),
}
"""Engine -> (script in ``parsers``, the engine's name in messages). A script is never named after
the engine's package: Python puts the script's directory first on ``sys.path``."""
CHECK_TIMEOUT_SECONDS = 600
"""Importing an engine's CLI imports torch and the engine's config modules: a minute on two busy
cores, seconds on a GPU node."""


class ParserUnavailable(RuntimeError):
    """The engine's argument parser could not run in this image."""


def _unavailable(engine: EngineType, python: str) -> str:
    return f"{PARSERS[engine][1]}'s argument parser did not run in this image ({python})"


def refusals(engine: EngineType, argvs: list[list[str]], python: str = ENGINE_PYTHON) -> list[str | None]:
    """The engine's own message for each command line of ``argvs`` it refuses (None: accepted)."""
    script = Path(parsers.__file__).with_name(f"{PARSERS[engine][0]}.py")
    try:
        done = subprocess.run(
            [python, str(script)],
            input=json.dumps({"argvs": argvs}),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ParserUnavailable(f"{_unavailable(engine, python)}: {error}") from error
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ParserUnavailable(f"{_unavailable(engine, python)}: {last}")
    refusals: list[str | None] = json.loads(done.stdout)["refusals"]
    return refusals


def argv_problem(
    engine: EngineType, argv: list[str], extra_args: list[str], python: str = ENGINE_PYTHON
) -> str | None:
    """Why the engine's own parser refuses ``argv`` (ending in ``extra_args``), naming the field, or
    None (also for an engine without a parser here)."""
    if engine not in PARSERS:
        return None
    generated = argv[: len(argv) - len(extra_args)]
    own, whole = refusals(engine, [generated, argv], python)
    return problem_of(engine, extra_args, own, whole)


def problem_of(engine: EngineType, extra_args: list[str], own: str | None, whole: str | None) -> str | None:
    """The problem the engine's verdicts show: ``own`` on the generated command line alone, ``whole``
    on it followed by ``extra_args``. A refusal of the generated part is a mismatch between the image
    and modelfleet; one only of the whole is the user's field."""
    name = PARSERS[engine][1]
    if own is not None:
        return (
            f"this {name} release refuses the command line modelfleet generates (the serving image and "
            f"modelfleet do not match): {own}"
        )
    if whole is not None:
        return f"{EXTRA_ARGS_FIELD}: {name} refuses {extra_args}: {whole}"
    return None
