"""What every runtime container's first process does: let SIGTERM end it before anything else, and
exit with a shell's code for its child's end.

Kubernetes stops a container with SIGTERM, then SIGKILL once the pod's grace period is over. The
container's command runs as PID 1 of its PID namespace, and the kernel delivers a signal to PID 1 only
when the process has a handler for it: the default action (terminate) does not apply there. So a
SIGTERM that arrives before a runtime has installed its own handler (while it imports, reads its
config, resolves or downloads the model) is dropped, the runtime goes on to start its engine or its
launcher, and the pod waits out its whole grace period before the SIGKILL. Seen on the real node: a
ModelDeployment that KEDA scaled to zero a second after it was created kept its replica for the serving
pods' 120 s. ``terminate_on_signals`` makes SIGTERM and SIGINT end the process with 128 + the signal's
number, as the default action would for a process that is not PID 1, until the runtime replaces the
handlers with its own (the launcher forwards them to the engine, the supervisor to torchrun).

That leaves the moments before the handler is in place (the interpreter starting), and the kubelet
stops a container within milliseconds of starting it when the pod was deleted while it was being
created (KEDA scales a new deployment to zero within a second): on the real node, with the handler in
place, a test run still waited the 120 s. So the operator also gives every runtime pod
``POD_SPEC``: one PID namespace for the pod, whose PID 1 is the pod's pause container, so a runtime is
never PID 1 and a SIGTERM before its handler takes the default action and ends it at once.

Written by hand: one ``signal.signal`` per signal. An init such as tini in every image (the engines'
upstream images included) would do the same from inside the container.
"""

from __future__ import annotations

import signal
from types import FrameType

TERMINATING = (signal.SIGTERM, signal.SIGINT)
POD_SPEC = {"shareProcessNamespace": True}
"""In every runtime pod's spec (serving, training workers, benchmark points): the pause container is
PID 1, not the runtime. The pods' other containers are init containers, done before it starts."""


def _exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def terminate_on_signals() -> None:
    """SIGTERM and SIGINT end this process (``SystemExit(128 + N)``: ``finally`` blocks still run)."""
    for sig in TERMINATING:
        signal.signal(sig, _exit)


def shell_exit_code(returncode: int) -> int:
    """The exit code a shell gives for a child's ``returncode``: 128 + N when signal N killed it
    (``subprocess`` reports -N, which ``sys.exit`` would turn into 256 - N)."""
    return 128 - returncode if returncode < 0 else returncode
