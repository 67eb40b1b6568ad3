"""What two-stage serving retrieves candidates from, per model version: a nearest-neighbour index over the
item factors and short precomputed lists (per category, per brand, most popular, per-user batch top-N).

The index is usearch's HNSW with the inner-product metric, the score ALS ranks by. usearch was chosen over
hnswlib and faiss-cpu because a saved index can be memory-mapped (`Index.restore(path, view=True)`): every
API worker of a machine then searches one copy in the page cache, which is what the shared model files
(recsys.stores.shared_model) need; it is a small, actively released wheel with no BLAS of its own. Small
catalogues (retrieval.ann.exact_below) are searched exactly: one matrix product is cheaper than a graph there,
and exact search makes two-stage and full scoring agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from recsys.config import AnnConfig

COSINE_WIDEN = 3  # an inner-product index asked for cosine neighbours returns this many times k


class ItemIndex(Protocol):
    def search(self, vectors: np.ndarray, k: int, cosine: bool = False) -> np.ndarray:
        """Rows of the (about) k items with the largest inner product (or cosine) with each vector, all
        queries together."""
        ...


@dataclass(frozen=True, eq=False)
class ExactIndex:
    """Exact inner-product search: one matrix product and an argpartition."""

    factors: np.ndarray
    inverse_norms: np.ndarray  # 1 / the factor rows' norms

    def search(self, vectors: np.ndarray, k: int, cosine: bool = False) -> np.ndarray:
        n = self.factors.shape[0]
        if k <= 0 or n == 0:
            return np.zeros(0, dtype=np.int64)
        scores = self.factors @ np.asarray(vectors, dtype=np.float32).reshape(-1, self.factors.shape[1]).T
        if cosine:
            scores *= self.inverse_norms[:, None]
        if k >= n:
            return np.arange(n, dtype=np.int64)
        return np.argpartition(-scores, k - 1, axis=0)[:k].ravel().astype(np.int64)


class HnswIndex:
    """usearch HNSW over item factors (key = row), built in memory or viewed from a saved file."""

    def __init__(self, index) -> None:
        self._index = index
        self._size = len(index)  # kept: usearch's len() cost a thousandth of a request; the index never grows
        self._ndim = index.ndim

    @classmethod
    def build(cls, factors: np.ndarray, cfg: AnnConfig) -> HnswIndex:
        from usearch.index import Index  # imported here: only serving processes that build or view one pay it

        index = Index(ndim=factors.shape[1], metric="ip", dtype=cfg.dtype, connectivity=cfg.connectivity,
                      expansion_add=cfg.expansion_add, expansion_search=cfg.expansion_search)
        index.add(np.arange(factors.shape[0], dtype=np.uint64), np.ascontiguousarray(factors, dtype=np.float32),
                  threads=cfg.build_threads, log=False)
        return cls(index)

    @classmethod
    def view(cls, path: Path, cfg: AnnConfig) -> HnswIndex:
        """The saved index memory-mapped read-only: pages are shared by every process viewing the file. Without
        key lookups (search answers keys, it never needs a key's slot): their table is built in each viewer's
        own memory, about 24 MB per million items."""
        from usearch.index import Index

        index = Index.restore(str(path), view=True, enable_key_lookups=False)
        index.expansion_search = cfg.expansion_search
        return cls(index)

    def save(self, path: Path) -> None:
        self._index.save(str(path))

    def search(self, vectors: np.ndarray, k: int, cosine: bool = False) -> np.ndarray:
        """Cosine neighbours are approximated by a wider inner-product search: the merge re-scores them all."""
        if k <= 0 or self._size == 0:
            return np.zeros(0, dtype=np.int64)
        k = k * COSINE_WIDEN if cosine else k
        queries = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, self._ndim))
        found = self._index.search(queries, k, threads=1)
        if not hasattr(found, "counts"):  # one query: usearch answers Matches, already cut to what it found
            return np.asarray(found.keys, dtype=np.int64)
        keys, counts = np.atleast_2d(found.keys), np.atleast_1d(found.counts)
        return np.concatenate([keys[q, :counts[q]] for q in range(len(queries))]).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Ragged:
    """Lists of rows as CSR arrays: list i is rows[indptr[i]:indptr[i + 1]]."""

    indptr: np.ndarray  # int64, one more than there are lists
    rows: np.ndarray  # int32 rows of all_item_ids

    @classmethod
    def from_lists(cls, lists: list[np.ndarray]) -> Ragged:
        lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        rows = np.concatenate(lists).astype(np.int32) if lists else np.zeros(0, dtype=np.int32)
        return cls(np.concatenate(([0], np.cumsum(lengths))).astype(np.int64), rows)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def of(self, i: int) -> np.ndarray:
        if i < 0 or i >= len(self):
            return np.zeros(0, dtype=np.int32)
        return self.rows[self.indptr[i]:self.indptr[i + 1]]


@dataclass(frozen=True, eq=False)
class RetrievalIndex:
    """A version's candidate structures; every row indexes the model's all_item_ids."""

    items: ItemIndex  # over the ALS items' factors
    by_category: Ragged  # category code -> its most popular rows, best first
    by_brand: Ragged  # brand code -> its most popular rows, best first
    popular: np.ndarray  # the most popular rows, best first
    category_means: np.ndarray  # category code -> mean factor vector of its ALS items (ranks categories for a taste)
