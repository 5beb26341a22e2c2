"""The garbage collector as `ringfence serve` sets it up before serving (cli.main.settle_heap)."""

from __future__ import annotations

import json
import subprocess
import sys

SETTLED = """
import gc, json, weakref
from ringfence.cli.main import YOUNG_COLLECTION_THRESHOLD, settle_heap
defaults = gc.get_threshold()
settle_heap()
class Node: pass
node = Node(); node.self = node  # a reference cycle: only the collector frees it
alive = weakref.ref(node)
del node
kept = [[] for _ in range(YOUNG_COLLECTION_THRESHOLD * 2)]  # container allocations trigger collections
print(json.dumps({"defaults": defaults, "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "young": YOUNG_COLLECTION_THRESHOLD, "cycle_freed": alive() is None}))
"""


def settled() -> dict:
    answer = subprocess.run([sys.executable, "-c", SETTLED], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(answer.stdout)


def test_serving_collects_the_young_generation_less_often_and_freezes_start_up_objects() -> None:
    state = settled()
    assert state["threshold"] == [state["young"], *state["defaults"][1:]]
    assert state["young"] > state["defaults"][0]
    assert state["frozen"] > 1000  # what start-up built is out of every later collection


def test_reference_cycles_are_still_freed_after_the_raised_threshold() -> None:
    assert settled()["cycle_freed"] is True
