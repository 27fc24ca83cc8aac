"""A live progress bar (rich) on a terminal; a log line every few seconds otherwise (pod logs)."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

log = logging.getLogger(__name__)
LOG_INTERVAL_SECONDS = 10.0


class LoadProgress:
    def __init__(self, description: str, total: int | None) -> None:
        self.description, self.total = description, total
        self.bar: Progress | None = None
        self.last_log = time.monotonic()

    def __enter__(self) -> LoadProgress:
        if sys.stderr.isatty():
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=self.total)
        return self

    def update(self, completed: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=completed)
        elif time.monotonic() - self.last_log >= LOG_INTERVAL_SECONDS:
            self.last_log = time.monotonic()
            log.info("%s: %d/%s requests", self.description, completed, self.total or "?")

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.stop()
