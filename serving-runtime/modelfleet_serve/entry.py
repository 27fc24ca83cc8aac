"""The console entry points of the serving image, `modelfleet-serve` and `modelfleet-bench`.

Each runs as its container's first process (PID 1), which the kernel gives no SIGTERM unless it has a
handler (``modelfleet_api.first_process``): the handler goes in first, and the command's own module,
whose imports take a few tenths of a second, is imported after it.
"""

from __future__ import annotations

from modelfleet_api.first_process import terminate_on_signals


def serve() -> int:
    terminate_on_signals()
    from modelfleet_serve.launcher import main  # after the handler, on purpose (see above)

    return main()


def bench() -> int:
    terminate_on_signals()
    from modelfleet_serve.bench.cli import main  # after the handler, on purpose (see above)

    return main()
