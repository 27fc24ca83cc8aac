"""`vllm serve` command lines through vLLM's own argument parser (run by the image's ``python3``).

The parser is vLLM's: the `serve` subcommand built the way `vllm`'s own CLI builds it
(``ServeSubcommand.subparser_init`` under a ``FlexibleArgumentParser``), then its ``validate`` (the
checks `vllm serve` makes before loading anything), so it never accepts a flag vLLM does not know,
nor refuses one it does (KAITO's vLLM launcher wraps the parser the same way). Protocol: see
``modelfleet_serve.engines.parsers``.
"""

from __future__ import annotations

import sys

from modelfleet_parser_protocol import Parse, answer


def serve_parse() -> Parse:
    """The parsing of a whole `vllm serve ...` command line: vLLM's `vllm` parser with its `serve`
    subcommand, then that subcommand's ``validate``."""
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
    return lambda argv: serve.validate(parser.parse_args(argv[1:]))


if __name__ == "__main__":
    sys.exit(answer("vLLM", serve_parse))
