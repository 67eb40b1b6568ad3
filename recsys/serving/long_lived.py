"""Keep a serving worker's long-lived objects (its app, the model just swapped in) out of the cyclic garbage
collector's full passes.

A worker holds about 126,000 tracked objects once a model is loaded, and a full (generation 2) collection walks
them all: 50-60 ms with the GIL held, every few thousand requests, on whichever requests wait behind it. After
a swap they are frozen (`gc.freeze`, as Instagram's forking servers do): later objects are collected as usual,
and the frozen ones are freed by reference counting when the next swap lets go of them. Unfreezing first lets
one collection find whatever cycles the model swapped out left.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()
