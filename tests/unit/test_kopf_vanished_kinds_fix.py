"""kopf_fixes.vanished_kinds: a kind whose CRD was deleted mid-watch (its watch answers 404) no longer
ends kopf's watcher, so the operator does not exit; its watch is tried again, and other errors still
end it as kopf intends."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import errors
from kopf._core.reactor import queueing
from modelfleet_operator import kopf_fixes
from modelfleet_operator.kopf_fixes import vanished_kinds

pytestmark = pytest.mark.unit


def not_found() -> errors.APINotFoundError:
    payload = {"code": 404, "message": "the server could not find the requested resource"}
    return errors.APINotFoundError(payload, status=404, headers={})


def test_install_wraps_kopfs_watcher_once() -> None:
    assert kopf_fixes.install()
    wrapped = queueing.watcher
    assert getattr(wrapped, vanished_kinds._FIXED)
    assert kopf_fixes.install(), "a second install is a no-op"
    assert queueing.watcher is wrapped


def test_a_watch_answering_404_is_tried_again_until_the_kind_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vanished_kinds, "FIRST_PAUSE_SECONDS", 0.01)
    calls: list[dict[str, Any]] = []

    async def kopf_watcher(**kwargs: Any) -> None:
        calls.append(kwargs)
        if len(calls) < 3:
            raise not_found()

    asyncio.run(vanished_kinds.surviving_vanished_kinds(kopf_watcher)(resource="scaledobjects"))
    assert [c["resource"] for c in calls] == ["scaledobjects"] * 3


def test_the_retrying_watch_stops_when_kopf_cancels_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's CRD observer cancels the watcher of a kind it saw deleted: the retries end there."""
    monkeypatch.setattr(vanished_kinds, "FIRST_PAUSE_SECONDS", 0.01)
    attempts = 0

    async def kopf_watcher(**kwargs: Any) -> None:
        nonlocal attempts
        attempts += 1
        raise not_found()

    async def scenario() -> bool:
        task = asyncio.ensure_future(vanished_kinds.surviving_vanished_kinds(kopf_watcher)(resource="x"))
        await asyncio.sleep(0.1)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(scenario())
    assert attempts >= 2


def test_other_errors_still_end_the_watcher() -> None:
    async def kopf_watcher(**kwargs: Any) -> None:
        raise errors.APIForbiddenError({"code": 403, "message": "forbidden"}, status=403, headers={})

    with pytest.raises(errors.APIForbiddenError):
        asyncio.run(vanished_kinds.surviving_vanished_kinds(kopf_watcher)(resource="x"))


def test_the_pause_grows_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []

    async def no_sleep(seconds: float) -> None:
        pauses.append(seconds)

    attempts = 0

    async def kopf_watcher(**kwargs: Any) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 8:
            raise not_found()

    monkeypatch.setattr(vanished_kinds.asyncio, "sleep", no_sleep)
    asyncio.run(vanished_kinds.surviving_vanished_kinds(kopf_watcher)(resource="x"))
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_watcher_stopped_before_its_first_list_no_longer_holds_every_new_object_back() -> None:
    """kopf holds new objects' passes until every indexed kind is listed; a kind whose CRD went away
    before its first list is stopped by kopf, and its hold must go with it."""

    async def never_lists(**kwargs: Any) -> None:
        await asyncio.Event().wait()

    async def scenario() -> tuple[bool, bool]:
        indexed = aiotoggles.ToggleSet(all)
        hold = await indexed.make_toggle(name="scaledobjects not listed yet")
        task = asyncio.ensure_future(
            vanished_kinds.surviving_vanished_kinds(never_lists)(
                resource="scaledobjects", operator_indexed=indexed, resource_indexed=hold
            )
        )
        await asyncio.sleep(0.05)
        held = not indexed.is_on()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return held, indexed.is_on()

    held, released = asyncio.run(scenario())
    assert held and released
