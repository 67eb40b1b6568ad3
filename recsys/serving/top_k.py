"""Choosing the best rows of a score vector: argpartition, then a category cap and the page offset.

Only the pool of best candidates is sorted and walked in Python; the whole catalogue is touched by
one argpartition, so ranking stays cheap for 100k items.
"""

from __future__ import annotations

import numpy as np

from recsys.stores.attribute_arrays import UNKNOWN

POOL_FACTOR = 4  # a capped list first looks at this many times the rows it needs,
CAPPED_POOL_MIN = 1024  # and at least this many: a pass over the catalogue costs the same for any pool size,
POOL_GROWTH = 8  # so a shopper whose best items share one category is served in one pass, not four


def scaled(scores: np.ndarray) -> np.ndarray:
    """Scale so the best item scores 1 (by the largest magnitude when none is positive), so that different
    signals can be blended. The best item, not the worst, sets the scale: the candidates of two-stage serving
    hold the best items but not the worst, so both stages scale alike."""
    if scores.size == 0:
        return scores
    top = float(np.max(scores))
    top = top if top > 0 else float(np.max(np.abs(scores)))
    return scores / top if top > 0 else scores


def best_rows(scores: np.ndarray, m: int) -> np.ndarray:
    """The (at most) m rows with the highest finite scores, best first; ties by row."""
    n = scores.size
    if m <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.arange(n) if m >= n else np.argpartition(-scores, m - 1)[:m]
    rows = rows[np.isfinite(scores[rows])]
    return rows[np.lexsort((rows, -scores[rows]))]


def top_rows(scores: np.ndarray, k: int, offset: int = 0, categories: np.ndarray | None = None,
             cap: int = 0) -> np.ndarray:
    """Rows of the page [offset, offset + k) of the ranking, best first.

    With cap > 0, at most `cap` items of any one known category are taken while walking down the
    ranking (items of unknown category are not capped), so the page never repeats a category more.
    """
    need = k + offset
    capped = cap > 0 and categories is not None
    pool = max(need * POOL_FACTOR, CAPPED_POOL_MIN) if capped else need
    while True:
        rows = best_rows(scores, pool)
        picked = _capped(rows, categories, cap, need) if capped else rows
        if not capped or len(picked) >= need or rows.size < pool or pool >= scores.size:
            return picked[offset:need]
        pool *= POOL_GROWTH


def _capped(rows: np.ndarray, categories: np.ndarray, cap: int, need: int) -> np.ndarray:
    """The first `need` of `rows` (best first) that are within the first `cap` of their category."""
    if rows.size == 0:
        return rows
    category = categories[rows]
    order = np.argsort(category, kind="stable")  # grouped by category, best first within each group
    grouped = category[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    sizes = np.diff(np.r_[starts, grouped.size])
    position = np.empty(rows.size, dtype=np.int64)
    position[order] = np.arange(rows.size) - np.repeat(starts, sizes)  # 0 = best of its category
    return rows[(position < cap) | (category == UNKNOWN)][:need]
