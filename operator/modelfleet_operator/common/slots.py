"""The operator's pass slots: at most ``workers`` reconcile passes at once, served by priority.

A pass waits for a slot (``metrics.measured_pass``). When one frees, the waiting pass of the most
urgent ``Priority`` gets it, the earliest of them first. A plain ``asyncio.Semaphore`` served passes
in arrival order only, and in a burst of new resources that order starved them: every new object's
children and pods bring events that wake it for more passes (reporting what its pods do), and those
passes queued between the new objects' first passes. In a burst of 1,000 TrainingJobs the queue was
400-800 passes deep for minutes, about three of four of them follow-ups, so the last TrainingJobs got
their first pass (the one that creates their children) minutes after they were made.

Serving first what a user just asked for is what controller-runtime's priority queue does too (it
serves the initial list's items after the changes that come while it runs). Strict priority can starve
``ROUTINE`` passes only while ``PROMPT`` ones keep coming faster than the slots serve them; each object
makes at most one ``PROMPT`` pass per spec change (and per stopped pod), so that is a burst of user
actions, which the follow-ups wait out: they then see the latest state in one pass.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from enum import IntEnum


class Priority(IntEnum):
    """Which waiting pass gets a free slot first: the lowest value."""

    PROMPT = 0
    """The object's first pass, its first since its spec changed (a new ``generation``), or one woken
    by urgent news (a pod that stopped): the passes that create, replace or restart children."""
    ROUTINE = 1
    """Every other pass: woken by its children's and pods' events, a deadline or the safety resync,
    to report what they do (the status) and repair drift."""


class PassSlots:
    """At most ``size`` holders at once; waiters are served by ``Priority``, then in arrival order.

    ``await slots.acquire(priority)`` ... ``slots.release()``. A waiter that is cancelled leaves the
    queue; one cancelled after it was handed a slot hands it on.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a pass needs at least one slot, got {size}")
        self._free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        """Waiters not yet served (a cancelled one is dropped when it comes up)."""
        return sum(1 for _, _, future in self._waiting if not future.done())

    @property
    def free(self) -> int:
        return self._free

    async def acquire(self, priority: Priority) -> None:
        # A slot is freed only when no one waits (``release``), so a free slot means an empty queue.
        if self._free > 0:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (int(priority), next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed a slot, then cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        """Hand the slot to the first waiter still waiting, else free it."""
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
