"""The GRU next-item model's weights and its numpy forward pass: what serving runs per request.

Training (recsys.sequence.train, JAX) and serving share these equations; serving needs numpy only, so an API
worker imports no deep-learning framework and maps the weight files read-only (one copy in the page cache
for every worker on the host).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import expit

from recsys.contracts.sequence_model import ITEMS_FILE, WEIGHT_ARRAYS


@dataclass(frozen=True)
class GruWeights:
    """One GRU layer over item embeddings, tied output embeddings (logits = (h @ w_out) . embeddings + b_item).

    Gates are stacked as [reset, update, candidate] along the last axis of w_x, w_h, b_x and b_h.
    """

    item_ids: list[str]
    embeddings: np.ndarray  # (n_items + 1, d), row 0 padding
    w_x: np.ndarray  # (d, 3h)
    w_h: np.ndarray  # (h, 3h)
    b_x: np.ndarray  # (3h,)
    b_h: np.ndarray  # (3h,)
    w_out: np.ndarray  # (h, d)
    b_item: np.ndarray  # (n_items + 1,)
    row: dict[str, int] = field(init=False)  # item id -> embedding row

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", {item: i + 1 for i, item in enumerate(self.item_ids)})

    @property
    def hidden(self) -> int:
        return self.w_h.shape[0]

    def rows_of(self, items: list[str]) -> np.ndarray:
        """Embedding rows of the known items, in order (unknown items are skipped)."""
        return np.fromiter((self.row[i] for i in items if i in self.row), dtype=np.int64)

    def state(self, rows: np.ndarray) -> np.ndarray:
        """The hidden state after reading `rows` (oldest first): the session's intent."""
        h = np.zeros(self.hidden, dtype=np.float32)
        if rows.size == 0:
            return h
        n = self.hidden
        gates_x = self.embeddings[rows] @ self.w_x + self.b_x  # every step's input part at once
        w_h, b_h = np.asarray(self.w_h), np.asarray(self.b_h)
        for gx in gates_x:  # few numpy calls per step: a request reads up to max_len items
            gh = h @ w_h + b_h
            rz = expit(gx[:2 * n] + gh[:2 * n])  # reset and update gates together
            c = np.tanh(gx[2 * n:] + rz[:n] * gh[2 * n:])
            h = c + rz[n:] * (h - c)  # = (1 - z) c + z h
        return h.astype(np.float32)

    def logits(self, rows: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
        """Next-item logits after the session `rows`, for the candidate rows (all items when None)."""
        query = self.state(rows) @ self.w_out
        if candidates is None:
            return (self.embeddings[1:] @ query + self.b_item[1:]).astype(np.float32)
        return (self.embeddings[candidates] @ query + self.b_item[candidates]).astype(np.float32)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the scored items, scaled so the likeliest scores 1 (a merge signal in [0, 1])."""
    if logits.size == 0:
        return logits
    return np.exp(logits - logits.max()).astype(np.float32)


def save(weights: GruWeights, directory: Path) -> None:
    """One .npy per array plus the item list: what `load` maps back."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in WEIGHT_ARRAYS:
        np.save(directory / f"{name}.npy", np.ascontiguousarray(getattr(weights, name), dtype=np.float32))
    (directory / ITEMS_FILE).write_text("\n".join(weights.item_ids) + "\n")


def load(directory: Path, mmap: bool = True) -> GruWeights:
    """The weights in `directory`, memory-mapped read-only by default."""
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r" if mmap else None) for name in WEIGHT_ARRAYS}
    items = (directory / ITEMS_FILE).read_text().splitlines()
    return GruWeights(item_ids=items, **arrays)
