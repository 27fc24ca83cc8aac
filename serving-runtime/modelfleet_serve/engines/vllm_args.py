"""The final `vllm serve` command line, checked by vLLM's own argument parser before the engine starts.

A typo in `engine.settings.extraArgs` (`--max-modle-len`) would otherwise surface as a crash-looping
pod whose log ends in an argparse error; checked here, the launcher exits at once with the flag named
in the container's termination message. The parser is vLLM's: the `serve` subcommand built the way
`vllm`'s own CLI builds it (``ServeSubcommand.subparser_init`` under a ``FlexibleArgumentParser``),
then its ``validate`` (the checks `vllm serve` makes before loading anything), so it never accepts a
flag vLLM does not know, nor refuses one it does (KAITO's vLLM launcher wraps the parser the same way).

The generated flags are checked on their own first, so a flag this vLLM release renamed is reported
as an incompatibility between modelfleet and the image rather than blamed on the user's extraArgs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from functools import cache
from typing import Any

EXTRA_ARGS_FIELD = "engine.settings.extraArgs"


class VllmParserUnavailable(RuntimeError):
    """vLLM's CLI could not be imported in this environment."""


@cache
def _serve_parser() -> tuple[argparse.ArgumentParser, Any]:
    """vLLM's `vllm` parser with its `serve` subcommand, and that subcommand (for ``validate``)."""
    try:
        from vllm import platforms

        if platforms.current_platform.is_unspecified():
            # The parser's defaults read the platform's device type. With no GPU visible (the
            # launcher only gets here on a GPU node; tests parse on CPU) vLLM's own CLI falls back to
            # its CPU platform in the same way for `vllm bench`; parsing does not depend on it.
            from vllm.platforms.cpu import CpuPlatform

            platforms.current_platform = CpuPlatform()
        from vllm.entrypoints.cli.serve import ServeSubcommand
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError as error:
        raise VllmParserUnavailable(f"vLLM's argument parser cannot be imported: {error}") from error
    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    serve = ServeSubcommand()
    serve.subparser_init(subparsers)
    return parser, serve


def _refusal(argv: list[str]) -> str | None:
    """vLLM's own message when it refuses ``vllm <argv>``, or None."""
    parser, serve = _serve_parser()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = parser.parse_args(argv)
    except SystemExit:
        lines = [line for line in errors.getvalue().splitlines() if line.strip()]
        return lines[-1] if lines else "refused (no message)"
    try:
        serve.validate(args)
    except (TypeError, ValueError) as error:
        return str(error)
    return None


def argv_problem(argv: list[str], extra_args: list[str]) -> str | None:
    """Why vLLM would refuse the command line ``argv`` (`vllm serve ...`, ending in ``extra_args``),
    naming the field, or None."""
    if argv[:2] != ["vllm", "serve"]:
        raise ValueError(f"not a `vllm serve` command line: {argv[:2]}")
    generated = argv[1 : len(argv) - len(extra_args)]
    refused = _refusal(generated)
    if refused is not None:
        return (
            f"this vLLM release refuses the command line modelfleet generates (the serving image and "
            f"modelfleet do not match): {refused}"
        )
    refused = _refusal(argv[1:])
    if refused is not None:
        return f"{EXTRA_ARGS_FIELD}: vLLM refuses {extra_args}: {refused}"
    return None
