"""Fold new interactions into a user's vector against fixed item factors (Oryx 2's rank-one update).

For implicit feedback the predicted preference x·y_i should move towards 1 for a positive event and
towards 0 for a negative one, further for a stronger event. Oryx computes the target and moves x by
the least-squares step dx = (target - x·y_i) · (YᵀY)⁻¹ y_i. (YᵀY)⁻¹ is k x k and precomputed once per
model, so one event costs a k x k product, a dot product and an axpy, and a process holds nothing per item
beyond the factors it is given (float32, often the version's shared memory-mapped file). Precomputing
(YᵀY)⁻¹ y_i for every item instead held two float64 copies of the item matrix in every process that folds
in: 1 GB per API worker and per Spark Python worker at 1M items x 64. The speed layer folds a user's events in;
serving folds an anonymous visitor's seen items into a zero vector. A user the batch model never saw
starts from zeros and has a useful vector after a few events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

RIDGE = 1e-3  # relative ridge on YᵀY: keeps the solve stable when factors are nearly collinear
GRAM_CHUNK = 65_536  # rows of the factors widened to float64 at a time to sum YᵀY


def ridge_inverse(factors: np.ndarray) -> np.ndarray:
    """(FᵀF + λI)⁻¹ in float64, λ = RIDGE x the mean diagonal, summed over row chunks: never a float64 copy
    of the whole matrix."""
    rank = factors.shape[1] if factors.ndim == 2 else 0
    gram = np.zeros((rank, rank))
    for start in range(0, factors.shape[0], GRAM_CHUNK):
        chunk = np.asarray(factors[start:start + GRAM_CHUNK], dtype=np.float64)
        gram += chunk.T @ chunk
    gram += RIDGE * max(float(np.trace(gram)) / max(rank, 1), 1e-9) * np.eye(rank)
    return np.linalg.inv(gram)


class FoldIn:
    """Item factors of one model version and (YᵀY)⁻¹: what a user's vector update needs."""

    def __init__(self, item_ids: list[str], item_factors: np.ndarray,
                 item_index: Mapping[str, int] | None = None) -> None:
        """`item_index` (item -> row of item_factors), when the caller has one already, is used as it is."""
        self.item_index = item_index if item_index is not None else {item: i for i, item in enumerate(item_ids)}
        self.factors = np.asarray(item_factors)
        self.inverse = ridge_inverse(self.factors)

    @property
    def rank(self) -> int:
        return self.inverse.shape[0]

    def update(self, x: np.ndarray, item_id: str, value: float) -> np.ndarray:
        """x after one event of strength `value` on item_id; unchanged for an item the model lacks."""
        row = self.item_index.get(item_id)
        if row is None or value == 0:
            return x
        y = np.asarray(self.factors[row], dtype=np.float64)
        current = float(x @ y)
        target = target_preference(value, current)
        if target is None:
            return x
        return x + (target - current) * (self.inverse @ y)

    def fold(self, x: np.ndarray, item_ids: Iterable[str], value: float) -> np.ndarray:
        """x after one event of strength `value` on each item, in order."""
        for item in item_ids:
            x = self.update(x, item, value)
        return x


def target_preference(value: float, current: float) -> float | None:
    """Oryx's implicit target for x·y_i: part of the way to 1 (or 0) by strength; None = no change."""
    if value > 0 and current < 1.0:
        return current + (value / (1.0 + value)) * (1.0 - max(0.0, current))
    if value < 0 and current > 0.0:
        return current + (value / (value - 1.0)) * -min(1.0, current)
    return None



class ItemFoldIn:
    """The transpose of FoldIn: fold a user's event into an ITEM's vector against fixed user vectors.

    An item the batch model has no factors for (new since the last run) gets y += (target - x·y) · (XᵀX+λI)⁻¹ x
    for each event of a user with vector x: the same least-squares step with the roles of users and items
    swapped. (XᵀX+λI)⁻¹ is k x k and precomputed once per model version from its user factors, so an event
    costs two dot products whatever the number of users.
    """

    def __init__(self, user_factors: np.ndarray) -> None:
        self.inverse = ridge_inverse(np.asarray(user_factors))  # (XᵀX+λI)⁻¹

    @property
    def rank(self) -> int:
        return self.inverse.shape[0]

    def update(self, y: np.ndarray, x: np.ndarray | None, value: float) -> np.ndarray:
        """y after one event of strength `value` by a user with vector x; unchanged without a vector."""
        if x is None or value == 0 or not np.any(x):
            return y
        x = np.asarray(x, dtype=np.float64)
        current = float(x @ y)
        target = target_preference(value, current)
        if target is None:
            return y
        return y + (target - current) * (self.inverse @ x)
