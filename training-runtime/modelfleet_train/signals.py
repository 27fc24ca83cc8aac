"""SIGTERM handling: Kubernetes (a spot eviction, a node drain) gives about 30 s after SIGTERM.

The handler only records the request; the loop finishes the optimizer step it is in, all ranks
agree to stop, save a complete checkpoint and exit with EXIT_CODE_PREEMPTED so the pod counts as
interrupted (not succeeded) and the restarted job resumes from that checkpoint.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

log = logging.getLogger(__name__)

EXIT_CODE_PREEMPTED = 128 + signal.SIGTERM
"""Exit status after a SIGTERM-triggered checkpoint: non-zero, so neither the Job nor the operator
takes the interrupted run for a finished one; the operator's gang restart resumes it."""


class StopRequest:
    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None

    def install(self) -> StopRequest:
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        log.warning("%s received: saving a checkpoint after this step, then exiting", self.signal_name)
