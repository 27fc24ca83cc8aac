"""The operator's pass slots (``common.slots``) and how a daemon uses them (``common.handlers``): a
free slot goes to the passes that make children before those that report, first come first served
within each; a cancelled waiter leaves the queue; the wakes that come while a pass waits for its
slot make no pass of their own."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from modelfleet_operator.common import handlers
from modelfleet_operator.common.handlers import ObjectState, Operator, pass_priority, register_controller
from modelfleet_operator.common.kinds import TRAINING_JOB
from modelfleet_operator.common.reconcile import Outcome
from modelfleet_operator.common.slots import PassSlots, Priority
from modelfleet_operator.config import OperatorConfig

from tests.unit.test_operator_core import Stopped

pytestmark = pytest.mark.unit

PROMPT, ROUTINE = Priority.PROMPT, Priority.ROUTINE


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_free_slot_goes_to_prompt_passes_first_then_by_arrival() -> None:
    served: list[str] = []

    async def scenario() -> None:
        slots = PassSlots(1)
        await slots.acquire(ROUTINE)  # the one slot is taken

        async def wait(name: str, priority: Priority) -> None:
            await slots.acquire(priority)
            served.append(name)

        waiters = []
        for name, priority in [("r1", ROUTINE), ("p1", PROMPT), ("r2", ROUTINE), ("p2", PROMPT)]:
            waiters.append(asyncio.ensure_future(wait(name, priority)))
            await settle()
        assert slots.waiting == 4 and slots.free == 0
        for _ in waiters:
            slots.release()
            await settle()
        await asyncio.gather(*waiters)
        slots.release()
        assert slots.free == 1 and slots.waiting == 0

    asyncio.run(scenario())
    assert served == ["p1", "p2", "r1", "r2"]


def test_slots_bound_the_passes_at_once() -> None:
    async def scenario() -> None:
        slots = PassSlots(2)
        await slots.acquire(ROUTINE)
        await slots.acquire(PROMPT)
        third = asyncio.ensure_future(slots.acquire(PROMPT))
        await settle()
        assert not third.done() and slots.waiting == 1
        slots.release()
        await settle()
        assert third.done() and slots.free == 0

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="at least one slot"):
        PassSlots(0)


def test_a_cancelled_waiter_leaves_the_queue_and_a_slot_handed_to_it_goes_on() -> None:
    async def scenario() -> None:
        slots = PassSlots(1)
        await slots.acquire(ROUTINE)
        gone = asyncio.ensure_future(slots.acquire(PROMPT))
        after = asyncio.ensure_future(slots.acquire(ROUTINE))
        await settle()
        gone.cancel()
        await settle()
        assert slots.waiting == 1
        slots.release()
        await settle()
        assert after.done(), "the cancelled waiter is skipped"

        # Handed the slot, then cancelled before it ran: the slot goes to the next waiter.
        handed = asyncio.ensure_future(slots.acquire(PROMPT))
        last = asyncio.ensure_future(slots.acquire(ROUTINE))
        await settle()
        slots.release()  # to ``handed``
        handed.cancel()
        await settle()
        assert handed.cancelled() and last.done()
        slots.release()
        assert slots.free == 1 and slots.waiting == 0

    asyncio.run(scenario())


def test_passes_that_may_make_children_are_prompt() -> None:
    new = ObjectState()
    assert pass_priority(new, 1, urgent=False) == PROMPT, "the object's first pass"
    planned = ObjectState(generation=3)
    assert pass_priority(planned, 3, urgent=False) == ROUTINE, "woken by its children or pods"
    assert pass_priority(planned, 4, urgent=False) == PROMPT, "its spec changed"
    assert pass_priority(planned, 3, urgent=True) == PROMPT, "a pod stopped"


class RecordingEngine:
    """An engine whose passes only record which object they were over."""

    def __init__(self) -> None:
        self.passes: list[str] = []

    @property
    def controller(self) -> Any:
        return type("Controller", (), {"kind": TRAINING_JOB})()

    async def run(self, body: dict[str, Any], stored: Any, indexes: Any) -> Outcome:
        self.passes.append(body["metadata"]["name"])
        return Outcome(None, None)

    def forget(self, uid: str) -> None:
        pass


def body(name: str, generation: int = 1) -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": generation}
    return {"apiVersion": "modelfleet.io/v1alpha1", "kind": "TrainingJob", "metadata": meta, "spec": {}}


def daemons(operator: Operator, engine: RecordingEngine) -> Any:
    """A function that starts the daemon ``register_controller`` registers for one object."""
    register_controller(operator, engine)  # type: ignore[arg-type]
    (daemon,) = operator.registry._spawning.get_all_handlers()

    def start(name: str, stopped: Stopped) -> asyncio.Future[Any]:
        return asyncio.ensure_future(
            daemon.fn(body=body(name), name=name, namespace="ns", uid=f"uid-{name}", stopped=stopped)
        )

    return start


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> RecordingEngine:
    """An engine for daemons that pass again at once when woken (no settle time)."""
    monkeypatch.setattr(handlers, "SETTLE_SECONDS", 0.0)
    return RecordingEngine()


def one_slot(engine: RecordingEngine) -> tuple[Operator, Any]:
    """An operator of one worker slot, and the starter of its daemons (inside the event loop)."""
    operator = Operator(OperatorConfig(workers=1), kopf.OperatorRegistry())
    return operator, daemons(operator, engine)


def test_a_new_objects_first_pass_goes_before_the_follow_ups_of_others(engine: RecordingEngine) -> None:
    async def scenario() -> None:
        operator, start = one_slot(engine)
        stops = [Stopped() for _ in range(2)]
        old = start("old", stops[0])
        await settle()
        assert engine.passes == ["old"], "its first pass"

        await operator.workers.acquire(ROUTINE)  # every slot is busy
        operator.wakeups.wake(("TrainingJob", "ns", "old"))  # its pods changed: a follow-up waits
        await settle()
        new = start("new", stops[1])
        await settle()
        assert operator.workers.waiting == 2
        operator.workers.release()
        await settle()
        assert engine.passes == ["old", "new", "old"]
        for stop in stops:
            stop.flag.set()
        await asyncio.gather(old, new)

    asyncio.run(scenario())


def test_wakes_that_come_while_a_pass_waits_for_its_slot_make_no_pass_of_their_own(
    engine: RecordingEngine,
) -> None:
    async def scenario() -> None:
        operator, start = one_slot(engine)
        stopped = Stopped()
        await operator.workers.acquire(ROUTINE)
        task = start("tj", stopped)
        await settle()
        for _ in range(3):  # its children and pods change while its first pass waits for a slot
            operator.wakeups.wake(("TrainingJob", "ns", "tj"))
            await settle()
        operator.workers.release()
        await settle()
        assert engine.passes == ["tj"], "the pass saw what woke it"

        operator.wakeups.wake(("TrainingJob", "ns", "tj"))  # news after the pass: one more
        await settle()
        assert engine.passes == ["tj", "tj"]
        stopped.flag.set()
        await task

    asyncio.run(scenario())
