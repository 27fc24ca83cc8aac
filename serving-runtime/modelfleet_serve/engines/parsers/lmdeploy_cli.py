"""`lmdeploy serve api_server` command lines through LMDeploy's own argument parser (run by the image's
``python3``).

The parser is LMDeploy's: the `lmdeploy` parser with every subcommand, built as its CLI entry point
(``lmdeploy.cli.entrypoint.run``) builds it. Nothing more is run: what `api_server` checks after
parsing is in the engine config it builds for the backend it picks, which it picks from the model's
architecture (``autoget_backend``), with a default batch size from the GPU's name
(``get_max_batch_size``); those checks run in the engine when it starts. Protocol: see
``modelfleet_serve.engines.parsers``.
"""

from __future__ import annotations

import sys

from modelfleet_parser_protocol import Parse, answer


def api_server_parse() -> Parse:
    """The parsing of a whole `lmdeploy serve api_server ...` command line: the `lmdeploy` parser, its
    subcommands added as ``lmdeploy.cli.entrypoint.run`` adds them."""
    from lmdeploy.cli.entrypoint import CLI, SubCliLite, SubCliServe

    CLI.add_parsers()
    SubCliServe.add_parsers()
    SubCliLite.add_parsers()
    return lambda argv: CLI.parser.parse_args(argv[1:])


if __name__ == "__main__":
    sys.exit(answer("LMDeploy", api_server_parse))
