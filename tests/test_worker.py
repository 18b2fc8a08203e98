"""The worker process's tuning, checked in a process of its own (it changes the collector)."""

from __future__ import annotations

import json
import subprocess
import sys

from streams.worker import GC_THRESHOLDS

CHECK = """
import gc, json
import streams.app  # what a started worker holds: the modules, Faust, the models
from streams.worker import collect_less

collect_less()
frozen = gc.get_freeze_count()

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle made after the start: still the collector's
del a, b
print(json.dumps({"frozen": frozen, "threshold": gc.get_threshold(), "found": gc.collect()}))
"""


def test_collect_less_freezes_what_the_start_made_and_still_collects_new_cycles() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], check=True, capture_output=True, text=True
    ).stdout
    figures = json.loads(out)
    assert figures["frozen"] > 50_000  # objects a full collection no longer walks
    assert tuple(figures["threshold"]) == GC_THRESHOLDS
    assert figures["found"] >= 2
