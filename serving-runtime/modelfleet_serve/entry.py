"""The console entry points of the serving image, `modelfleet-serve` and `modelfleet-bench`.

Each runs as its container's first process: PID 1 wherever the pod does not share one PID namespace
(the operator's pods do), and the kernel gives PID 1 no SIGTERM it has no handler for
(``modelfleet_api.first_process``). So the handler goes in first, and the command's own module, whose
imports take a few tenths of a second, is imported after it.
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
