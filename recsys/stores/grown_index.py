"""An id -> row lookup and a row -> id list grown by a few ids without copying the ones they grow.

A live catalogue change adds a handful of items to a served model of up to millions. Copying the model's
lookups for that costs every worker a second or more of CPU and tens of MB per million items, once per change
(bench/live_overlay.py). A GrownIndex keeps the base dict shared and holds only what changed: the new ids,
and where the base's rows moved when rows were inserted before them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from recsys.stores.shared_ids import IdLookup


class GrownIndex(IdLookup):
    """`base` with `extra` laid over it; a base row at or after `split` moves to moved[row - split].

    `extra` wins over `base`: an id whose row changed (an item that moved into the factor rows) is listed there.
    """

    __slots__ = ("_base", "_extra", "_moved", "_split")

    def __init__(self, base: Mapping[str, int], extra: Mapping[str, int], split: int | None = None,
                 moved: np.ndarray | None = None) -> None:
        if isinstance(base, GrownIndex):  # grow the original, not a chain of overlays
            raise TypeError("GrownIndex grows a plain mapping; build the next one from the same base")
        self._base, self._extra = base, dict(extra)
        self._split = split if moved is not None and split is not None else None
        self._moved = moved

    def get(self, key: str, default: int | None = None) -> int | None:  # type: ignore[override]
        row = self._extra.get(key)
        if row is not None:
            return row
        row = self._base.get(key)
        if row is None:
            return default
        return row if self._split is None or row < self._split else int(self._moved[row - self._split])

    def __contains__(self, key: object) -> bool:
        return key in self._extra or key in self._base

    def __iter__(self) -> Iterator[str]:
        yield from self._extra
        yield from (key for key in self._base if key not in self._extra)

    def __len__(self) -> int:
        return len(self._base) + sum(1 for key in self._extra if key not in self._base)


class GrownIds(Sequence[str]):
    """Row -> id of a model grown from `base`: its first `head` rows, then `live`, then the base rows `kept` (all
    rows after `head`, in order, when None), then `added`; built without walking `base`."""

    __slots__ = ("_added", "_base", "_head", "_kept", "_live", "_n_kept")

    def __init__(self, base: Sequence[str], head: int, live: Sequence[str] = (), kept: np.ndarray | None = None,
                 added: Sequence[str] = ()) -> None:
        self._base, self._head, self._live, self._kept, self._added = base, head, list(live), kept, list(added)
        self._n_kept = len(base) - head if kept is None else len(kept)

    def __len__(self) -> int:
        return self._head + len(self._live) + self._n_kept + len(self._added)

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = int(row)
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} of {len(self)} ids")
        if row < self._head:
            return self._base[row]
        row -= self._head
        if row < len(self._live):
            return self._live[row]
        row -= len(self._live)
        if row < self._n_kept:
            return self._base[self._head + row if self._kept is None else int(self._kept[row])]
        return self._added[row - self._n_kept]
