"""gc_tuning: the operator's process freezes what start-up made and collects less often, and cyclic
garbage made after that is still collected. Run in a child process: the test process keeps its own
collector settings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from modelfleet_operator import gc_tuning

pytestmark = pytest.mark.unit

PROBE = """
import gc, json, weakref
import modelfleet_operator.__main__  # everything the operator imports at start-up
from modelfleet_operator import gc_tuning
gc_tuning.tune()
class Node:
    pass
first = Node(); second = Node(); first.other, second.other = second, first  # a cycle
alive = weakref.ref(first)
del first, second
before = alive() is not None  # reference counting cannot free a cycle
kept = [[] for _ in range(gc_tuning.THRESHOLDS[0] + 1)]  # enough new containers for a young collection
print(json.dumps({"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "cycle_before": before, "cycle_after": alive() is not None}))
"""


def test_start_up_is_frozen_and_cycles_are_still_collected() -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    found = json.loads(probe.stdout)
    assert tuple(found["thresholds"]) == gc_tuning.THRESHOLDS
    assert found["frozen"] > 10_000, "kopf's, pydantic's and the operator's start-up objects"
    assert found["cycle_before"] and not found["cycle_after"]
