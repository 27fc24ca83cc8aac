"""kopf_fixes.readiness: kopf's start-up readiness set wakes its waiters only when its own state flips,
and still behaves as kopf's ``ToggleSet`` for every caller kopf has (index pre-population, peering pauses)."""

from __future__ import annotations

import asyncio

import pytest
from kopf._cogs.aiokits import aiotoggles
from modelfleet_operator import kopf_fixes

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def fixed() -> None:
    assert kopf_fixes.install()
    assert kopf_fixes.install(), "a second install is a no-op"


def test_waiters_wake_once_when_the_last_blocker_is_dropped_not_on_every_change() -> None:
    async def scenario() -> tuple[int, bool, bool]:
        indexed = aiotoggles.ToggleSet(all)
        blockers = [await indexed.make_toggle(name=f"object {i}") for i in range(200)]
        checks = 0
        real_is_on = indexed.is_on

        def counted() -> bool:
            nonlocal checks
            checks += 1
            return real_is_on()

        waiters = [asyncio.ensure_future(indexed.wait_for(True)) for _ in range(50)]
        await asyncio.sleep(0)
        indexed.is_on = counted  # type: ignore[method-assign]
        for blocker in blockers[:-1]:  # each object's worker drops its own, between others' steps
            await indexed.drop_toggle(blocker)
            await asyncio.sleep(0)
        early = any(w.done() for w in waiters)
        await indexed.drop_toggles(blockers[-1:])
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
        return checks, early, indexed.is_on()

    checks, early, on = asyncio.run(scenario())
    assert not early and on
    # kopf's own set re-checks all 50 waiters on each of the 200 drops (10,000 checks, each scanning
    # the set); the fix checks the set twice a drop and the waiters once each when it turns on.
    assert checks <= 2 * 200 + 2 * 50


def test_toggles_turned_on_and_off_still_wake_their_waiters() -> None:
    async def scenario() -> list[bool]:
        paused = aiotoggles.ToggleSet(any)
        seen = []
        toggle = await paused.make_toggle(False, name="peering")
        waiter = asyncio.ensure_future(paused.wait_for(True))
        await asyncio.sleep(0)
        seen.append(waiter.done())
        await toggle.turn_to(True)
        await asyncio.wait_for(waiter, timeout=5)
        seen.append(waiter.done())
        resumed = asyncio.ensure_future(paused.wait_for(False))
        await paused.drop_toggle(toggle)  # the last "on" toggle goes: the set turns off
        await asyncio.wait_for(resumed, timeout=5)
        preactivated = await paused.make_toggle(True, name="conflict")  # adding an "on" one turns it on
        seen.append(paused.is_on())
        await paused.drop_toggle(preactivated)
        return seen

    assert asyncio.run(scenario()) == [False, True, True]
