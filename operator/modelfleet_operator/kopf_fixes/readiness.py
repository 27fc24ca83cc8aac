"""A fix for kopf's start with many indexed objects, installed before the operator runs.

kopf holds every handler back until its indexes are filled: each listed object of an indexed kind adds
a toggle to the operator-wide "indexed" ``ToggleSet`` and drops it once indexed, while the worker of
every listed object (of every watched kind) waits for the set to turn on. ``ToggleSet`` (kopf 1.45,
``kopf._cogs.aiokits.aiotoggles``) wakes *every* waiter on *every* toggle added or dropped
(``asyncio.Condition.notify_all``), so a start costs objects x objects wakeups: an operator restarted
over 400 TrainingJobs (4,800 watched children and pods) ran no pass for more than five minutes.

Here adding or dropping a toggle wakes the waiters only when the set's own state flips, which is all
they wait for; a toggle turned on or off (kopf's peering pauses) still wakes them as before. Checking
the state is cheap while most toggles are off: ``all`` stops at the first one.

The fix replaces three methods of a private kopf class, so it checks that the class still has the
shape it was written for and leaves kopf alone (with a warning) otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kopf._cogs.aiokits import aiotoggles

logger = logging.getLogger(__name__)

_FIXED = "_modelfleet_wakes_on_flips"


async def _make_toggle(self: Any, __val: bool = False, *, name: str | None = None) -> aiotoggles.Toggle:
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        before = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != before:
            self._condition.notify_all()
    return toggle


async def _drop_toggle(self: Any, toggle: aiotoggles.Toggle) -> None:
    await _drop_toggles(self, [toggle])


async def _drop_toggles(self: Any, toggles: Iterable[aiotoggles.Toggle]) -> None:
    async with self._condition:
        before = self.is_on()
        self._toggles.difference_update(toggles)
        if self.is_on() != before:
            self._condition.notify_all()


def install() -> bool:
    """Install the fix once; False when kopf's ``ToggleSet`` is not the one it was written for."""
    toggle_set = aiotoggles.ToggleSet
    if getattr(toggle_set, _FIXED, False):
        return True
    probe = toggle_set(all)
    if not all(
        hasattr(probe, attr) for attr in ("_condition", "_toggles", "is_on", "make_toggle", "drop_toggle")
    ):
        logger.warning("kopf's ToggleSet changed shape: its start-up wake-ups are left as they are")
        return False
    toggle_set.make_toggle = _make_toggle  # type: ignore[method-assign]
    toggle_set.drop_toggle = _drop_toggle  # type: ignore[method-assign]
    toggle_set.drop_toggles = _drop_toggles  # type: ignore[method-assign]
    setattr(toggle_set, _FIXED, True)
    return True
