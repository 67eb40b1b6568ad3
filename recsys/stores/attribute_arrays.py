"""Catalogue attributes (category, brand, price) as coded numpy arrays.

Serving filters and caps by these attributes on every request over the whole catalogue, so they are
integer codes and floats aligned to the model's items: a filter is one boolean mask, never a Python loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

UNKNOWN = -1  # the code of a missing category or brand


def _encode(values: Sequence[str | None]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes (UNKNOWN for None or blank) and the distinct names they index."""
    names: dict[str, int] = {}
    codes = np.fromiter((UNKNOWN if not v else names.setdefault(v, len(names)) for v in values),
                        dtype=np.int32, count=len(values))
    return codes, tuple(names)


@dataclass(frozen=True, eq=False)
class AttributeArrays:
    """Attributes of a list of items, row i = item i; unknown values are UNKNOWN codes or NaN prices."""

    category: np.ndarray  # int32 code into category_names
    brand: np.ndarray  # int32 code into brand_names
    price: np.ndarray  # float64
    category_names: tuple[str, ...] = ()
    brand_names: tuple[str, ...] = ()
    category_code: dict[str, int] = field(init=False, repr=False)
    brand_code: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "category_code", {name: i for i, name in enumerate(self.category_names)})
        object.__setattr__(self, "brand_code", {name: i for i, name in enumerate(self.brand_names)})

    @classmethod
    def from_values(cls, categories: Sequence[str | None], brands: Sequence[str | None],
                    prices: Sequence[float | None]) -> AttributeArrays:
        category, category_names = _encode(categories)
        brand, brand_names = _encode(brands)
        price = np.array([np.nan if p is None else p for p in prices], dtype=np.float64)
        return cls(category, brand, price, category_names, brand_names)

    @classmethod
    def unknown(cls, n: int) -> AttributeArrays:
        """n items of which nothing is known (no catalogue): only unfiltered requests return them."""
        codes = np.full(n, UNKNOWN, dtype=np.int32)
        return cls(codes, codes.copy(), np.full(n, np.nan))

    def __len__(self) -> int:
        return len(self.category)

    def take(self, rows: np.ndarray) -> AttributeArrays:
        """The attributes of `rows` in that order; a row of -1 is an item the catalogue lacks."""
        rows = np.asarray(rows, dtype=np.int64)
        known = rows >= 0
        safe = np.where(known, rows, 0)
        if len(self) == 0:
            return AttributeArrays.unknown(len(rows))
        return AttributeArrays(np.where(known, self.category[safe], UNKNOWN).astype(np.int32),
                              np.where(known, self.brand[safe], UNKNOWN).astype(np.int32),
                              np.where(known, self.price[safe], np.nan),
                              self.category_names, self.brand_names)

    def mask(self, category: str | None = None, brand: str | None = None, min_price: float | None = None,
             max_price: float | None = None) -> np.ndarray | None:
        """Items passing every filter that is set (None: no filter set); unknown values fail a set filter."""
        keep: np.ndarray | None = None
        for part in (self._equals(self.category, self.category_code, category),
                     self._equals(self.brand, self.brand_code, brand),
                     None if min_price is None else self.price >= min_price,  # NaN compares False
                     None if max_price is None else self.price <= max_price):
            if part is not None:
                keep = part if keep is None else keep & part
        return keep

    @staticmethod
    def _equals(codes: np.ndarray, lookup: Mapping[str, int], name: str | None) -> np.ndarray | None:
        if name is None:
            return None
        code = lookup.get(name)
        return np.zeros(len(codes), dtype=bool) if code is None else codes == code

    def category_of(self, row: int) -> str | None:
        code = int(self.category[row])
        return None if code == UNKNOWN else self.category_names[code]

    def brand_of(self, row: int) -> str | None:
        code = int(self.brand[row])
        return None if code == UNKNOWN else self.brand_names[code]


@dataclass(frozen=True)
class ItemCatalogue:
    """The ITEMS table as read: item ids and their attributes, in table order."""

    item_ids: list[str]
    attributes: AttributeArrays
    row: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", {item: i for i, item in enumerate(self.item_ids)})

    @classmethod
    def from_rows(cls, rows: Mapping[str, tuple[str | None, str | None, float | None]]) -> ItemCatalogue:
        """item_id -> (category, brand, price); handy for tests and small catalogues."""
        ids = list(rows)
        values = [rows[i] for i in ids]
        return cls(ids, AttributeArrays.from_values([v[0] for v in values], [v[1] for v in values],
                                                   [v[2] for v in values]))

    def align(self, item_ids: Sequence[str]) -> AttributeArrays:
        """Attributes aligned to `item_ids`; items the catalogue lacks get unknown attributes."""
        rows = np.fromiter((self.row.get(i, -1) for i in item_ids), dtype=np.int64, count=len(item_ids))
        return self.attributes.take(rows)
