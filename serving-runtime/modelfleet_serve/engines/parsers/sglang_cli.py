"""`python3 -m sglang.launch_server` command lines through SGLang's own server arguments (run by the
image's ``python3``).

The parser is SGLang's, built as ``sglang.launch_server`` builds it: its plugins loaded, then
``prepare_server_args`` (``ServerArgs.add_cli_args`` on an argparse parser, ``--config`` files merged,
``ServerArgs.from_cli_args``). Then the checks of SGLang's argument resolution
(``ServerArgs.resolve_once``) that hold for any model: the resolution pipeline stops at a dummy model
before it reads the model's config or probes the GPU, so a copy of the arguments with the model path
``dummy`` is resolved (what follows that boundary needs the model and a GPU, and runs in the engine
when it starts). Protocol: see ``modelfleet_serve.engines.parsers``.
"""

from __future__ import annotations

import dataclasses
import sys

from modelfleet_parser_protocol import Parse, answer

PROGRAM = ["python3", "-m", "sglang.launch_server"]


def launch_server_parse() -> Parse:
    """The parsing of a whole `python3 -m sglang.launch_server ...` command line."""
    from sglang.srt.plugins import load_plugins
    from sglang.srt.server_args import prepare_server_args

    load_plugins()  # as `launch_server` does first: a plugin may hook the server arguments

    def parse(argv: list[str]) -> None:
        if argv[: len(PROGRAM)] != PROGRAM:
            raise ValueError(f"not a `{' '.join(PROGRAM)}` command line: {argv[: len(PROGRAM)]}")
        server_args = prepare_server_args(argv[len(PROGRAM) :])
        dataclasses.replace(server_args, model_path="dummy").resolve_once()

    return parse


if __name__ == "__main__":
    sys.exit(answer("SGLang", launch_server_parse))
