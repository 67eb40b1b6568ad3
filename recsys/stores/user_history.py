"""The batch layer's per-user history (USER_HISTORY table) held as compressed rows.

Serving needs, for any known shopper, the items they had before the stream started (item-kNN and
recent-items signals) and what they own with when they last bought it (the repurchase policy); as
CSR arrays that is a few bytes per pair instead of Python tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NEVER = np.nan  # owned_s of an item the shopper had but never owned


@dataclass(frozen=True, eq=False)
class UserItems:
    """What one shopper had, newest first: item ids, last-seen and last-owned times (epoch seconds)."""

    items: list[str]
    last_s: np.ndarray
    owned_s: np.ndarray  # NaN where the item was never owned

    def owned(self) -> dict[str, float]:
        """item -> last time owned (epoch seconds)."""
        keep = ~np.isnan(self.owned_s)
        return dict(zip((i for i, k in zip(self.items, keep, strict=True) if k), self.owned_s[keep].tolist(),
                        strict=True))


EMPTY = UserItems([], np.zeros(0), np.zeros(0))


@dataclass(frozen=True, eq=False)
class UserHistory:
    """Row r of the CSR arrays = the items of users[r], newest first; item codes index `items`."""

    users: list[str]
    items: list[str]
    indptr: np.ndarray  # int64, len(users) + 1
    codes: np.ndarray  # int32 into items
    last_s: np.ndarray  # float64 epoch seconds
    owned_s: np.ndarray  # float64 epoch seconds, NaN = never owned
    row: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", {user: i for i, user in enumerate(self.users)})

    @classmethod
    def build(cls, users: list[str], items: list[str], user_codes: np.ndarray, item_codes: np.ndarray,
              last_s: np.ndarray, owned_s: np.ndarray) -> UserHistory:
        """From pair arrays (codes into users / items) in any order."""
        user_codes = np.asarray(user_codes, dtype=np.int64)
        last_s = np.asarray(last_s, dtype=np.float64)
        order = np.lexsort((-last_s, user_codes))
        counts = np.bincount(user_codes, minlength=len(users))
        indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return cls(users, items, indptr, np.asarray(item_codes, dtype=np.int32)[order], last_s[order],
                   np.asarray(owned_s, dtype=np.float64)[order])

    @classmethod
    def from_rows(cls, rows: list[tuple[str, str, float, float | None]]) -> UserHistory:
        """From (user, item, last_s, owned_s or None) rows (encoded in Python: tests and small tables)."""
        users: dict[str, int] = {}
        items: dict[str, int] = {}
        u = np.array([users.setdefault(r[0], len(users)) for r in rows], dtype=np.int64)
        i = np.array([items.setdefault(r[1], len(items)) for r in rows], dtype=np.int64)
        last = np.array([r[2] for r in rows], dtype=np.float64)
        owned = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64)
        return cls.build(list(users), list(items), u, i, last, owned)

    def of(self, user_id: str) -> UserItems:
        """The user's items, newest first; EMPTY for a user without history."""
        row = self.row.get(user_id)
        if row is None:
            return EMPTY
        start, end = int(self.indptr[row]), int(self.indptr[row + 1])
        return UserItems([self.items[c] for c in self.codes[start:end].tolist()], self.last_s[start:end],
                         self.owned_s[start:end])
