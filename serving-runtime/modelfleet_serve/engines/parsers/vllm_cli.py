"""`vllm serve` command lines through vLLM's own argument parser (run by the image's ``python3``).

The parser is vLLM's: the `serve` subcommand built the way `vllm`'s own CLI builds it
(``ServeSubcommand.subparser_init`` under a ``FlexibleArgumentParser``), then its ``validate`` (the
checks `vllm serve` makes before loading anything), so it never accepts a flag vLLM does not know,
nor refuses one it does (KAITO's vLLM launcher wraps the parser the same way). Protocol: see
``modelfleet_serve.engines.parsers``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from typing import Any

UNAVAILABLE = 3


def serve_parser() -> tuple[argparse.ArgumentParser, Any]:
    """vLLM's `vllm` parser with its `serve` subcommand, and that subcommand (for ``validate``)."""
    from vllm import platforms

    if platforms.current_platform.is_unspecified():
        # The parser's defaults read the platform's device type. With no GPU visible (the launcher only
        # gets here on a GPU node; tests parse on CPU) vLLM's own CLI falls back to its CPU platform in
        # the same way for `vllm bench`; parsing does not depend on it.
        from vllm.platforms.cpu import CpuPlatform

        platforms.current_platform = CpuPlatform()
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    serve = ServeSubcommand()
    serve.subparser_init(subparsers)
    return parser, serve


def refusal(parser: argparse.ArgumentParser, serve: Any, argv: list[str]) -> str | None:
    """vLLM's own message when it refuses ``argv`` (`vllm serve ...`), or None."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = parser.parse_args(argv[1:])
    except SystemExit:
        lines = [line for line in errors.getvalue().splitlines() if line.strip()]
        return lines[-1] if lines else "refused (no message)"
    try:
        serve.validate(args)
    except (TypeError, ValueError) as error:
        return str(error)
    return None


def main() -> int:
    argvs = json.load(sys.stdin)["argvs"]
    try:
        parser, serve = serve_parser()
    except ImportError as error:
        print(f"vLLM's argument parser cannot be imported: {error}", file=sys.stderr)
        return UNAVAILABLE
    json.dump({"refusals": [refusal(parser, serve, argv) for argv in argvs]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
