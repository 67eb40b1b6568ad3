"""The batch layer's similar-items lists (SIMILAR_ITEMS table) held as compressed rows.

A catalogue of 100k items with 20 neighbours each is two million pairs: as Python tuples that would
cost hundreds of megabytes per worker, as int32/float32 arrays it is a few dozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class SimilarItems:
    """Row r of the CSR arrays = the neighbours of vocabulary[r], most similar first."""

    vocabulary: list[str]
    indptr: np.ndarray  # int64, len(vocabulary) + 1
    neighbours: np.ndarray  # int32 into vocabulary
    scores: np.ndarray  # float32
    row: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", {item: i for i, item in enumerate(self.vocabulary)})

    @classmethod
    def build(cls, vocabulary: list[str], items: np.ndarray, similar: np.ndarray, scores: np.ndarray,
              ranks: np.ndarray) -> SimilarItems:
        """From pair arrays whose items and similar items are codes into `vocabulary`, in any order."""
        items = np.asarray(items, dtype=np.int64)
        order = np.lexsort((np.asarray(ranks), items))
        counts = np.bincount(items, minlength=len(vocabulary))
        indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return cls(vocabulary, indptr, np.asarray(similar, dtype=np.int32)[order],
                   np.asarray(scores, dtype=np.float32)[order])

    @classmethod
    def from_pairs(cls, items: Sequence[str], similar: Sequence[str], scores: Sequence[float],
                   ranks: Sequence[int]) -> SimilarItems:
        """From id pairs (encoded in Python: for tests and small tables)."""
        codes: dict[str, int] = {}
        item_codes = np.array([codes.setdefault(i, len(codes)) for i in items], dtype=np.int64)
        similar_codes = np.array([codes.setdefault(i, len(codes)) for i in similar], dtype=np.int64)
        return cls.build(list(codes), item_codes, similar_codes, np.asarray(scores), np.asarray(ranks))

    def of(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """The item's k most similar items with their scores; [] for an item without a list."""
        row = self.row.get(item_id)
        if row is None:
            return []
        start, end = int(self.indptr[row]), int(self.indptr[row + 1])
        end = min(end, start + k)
        return [(self.vocabulary[n], float(s)) for n, s in
                zip(self.neighbours[start:end].tolist(), self.scores[start:end].tolist(), strict=True)]
