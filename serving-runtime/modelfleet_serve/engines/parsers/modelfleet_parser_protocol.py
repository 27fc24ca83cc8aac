"""What every parser script shares: the protocol (``modelfleet_serve.engines.parsers``) and how a
refusal reads.

The scripts import it as a top-level module (a script's directory is first on ``sys.path``), so its
name must be one no engine's own modules import.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Callable

UNAVAILABLE = 3
"""Exit status when the engine's parser cannot be imported."""

Parse = Callable[[list[str]], object]
"""The engine's own parsing (and checks) of a whole command line: argparse's exit, or a TypeError or
ValueError, when the engine refuses it."""


def refusal(parse: Parse, argv: list[str]) -> str | None:
    """The engine's own message when ``parse`` refuses ``argv`` (the last line argparse wrote before
    exiting, or the error raised), or None."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parse(argv)
    except SystemExit:
        lines = [line for line in errors.getvalue().splitlines() if line.strip()]
        return lines[-1] if lines else "refused (no message)"
    except (TypeError, ValueError) as error:
        return str(error)
    return None


def answer(engine: str, load: Callable[[], Parse]) -> int:
    """Reads the command lines from stdin, checks each with the parsing ``load`` builds (importing the
    engine), writes the verdicts to stdout; returns the exit status."""
    argvs = json.load(sys.stdin)["argvs"]
    # Engines log and warn while they import and parse: stdout carries the answer only.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            parse = load()
        except ImportError as error:
            print(f"{engine}'s argument parser cannot be imported: {error}", file=sys.stderr)
            return UNAVAILABLE
        found = [refusal(parse, argv) for argv in argvs]
    json.dump({"refusals": found}, sys.stdout)
    return 0
