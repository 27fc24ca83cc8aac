"""The cyclic garbage collector, set for an operator that parses thousands of watch events a minute.

CPython frees almost everything the operator drops by reference counting: a watch event's parsed body,
a pass's plan and manifests. The cyclic collector still runs a young collection every 700 new container
objects and, as the heap grows, full collections that traverse every object the process holds: the
modules, classes and functions of kopf, pydantic, aiohttp and the operator (some 110,000 objects after
start-up) and the indexes' copies of every child and pod. Parsing one pod's event makes a few hundred
containers, so in a burst of new TrainingJobs the collector ran every few events: measured with
``gc.callbacks`` in a burst of 300 TrainingJobs (``benchmarks/operator_scale.py``), it used 3.7 of the
operator's 14.2 CPU seconds (2,233 young, 203 middle and 18 full collections, the full ones 130 ms
each). With the objects of start-up frozen (``gc.freeze``: never traversed again) and the thresholds
below, the same burst spent 1.0 of 11.9 CPU seconds in it, at the same peak RSS.

The collector stays on: asyncio's cancelled tasks and exceptions with tracebacks do make cycles, and
they are still collected, only later: a young collection after 50,000 new containers (a few MB), a
middle one after 20 of those, a full one after 10 middle ones (about every ten million new containers,
a burst of a few thousand TrainingJobs).
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 10)
"""``gc.set_threshold``: (young, middle, full); CPython's defaults are (700, 10, 10)."""


def tune() -> None:
    """Freeze what start-up made and collect less often; called once, after the imports and the
    registry, before the first watch event."""
    gc.collect()  # start-up's own garbage goes now, not frozen forever
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
