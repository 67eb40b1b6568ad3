"""Catalogue attributes (category, brand, price) as coded numpy arrays.

Serving filters and caps by these attributes on every request over the whole catalogue, so they are
integer codes and floats aligned to the model's items: a filter is one boolean mask, never a Python loop.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

UNKNOWN = -1  # the code of a missing category or brand

# An item's status (AttributeArrays.status): whether serving may return it.
SERVABLE = 0
UNAVAILABLE = 1  # sold out (available false): returned only to a request that asks for unavailable items
WITHDRAWN = 2  # blocked or deleted, or not in a catalogue that exists (an id only events named): never returned


def status_of(available: bool | None, blocked: bool | None) -> int:
    return WITHDRAWN if blocked else UNAVAILABLE if available is False else SERVABLE


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
    status: np.ndarray | None = None  # int8 SERVABLE / UNAVAILABLE / WITHDRAWN; None: all servable
    category_code: dict[str, int] = field(init=False, repr=False)
    brand_code: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "category_code", {name: i for i, name in enumerate(self.category_names)})
        object.__setattr__(self, "brand_code", {name: i for i, name in enumerate(self.brand_names)})
        if self.status is not None and not self.status.any():
            object.__setattr__(self, "status", None)  # every item servable: filters skip the check

    @classmethod
    def from_values(cls, categories: Sequence[str | None], brands: Sequence[str | None],
                    prices: Sequence[float | None], statuses: Sequence[int] | None = None) -> AttributeArrays:
        category, category_names = _encode(categories)
        brand, brand_names = _encode(brands)
        price = np.array([np.nan if p is None else p for p in prices], dtype=np.float64)
        status = None if statuses is None else np.asarray(statuses, dtype=np.int8)
        return cls(category, brand, price, category_names, brand_names, status)

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
        if len(self) == 0:
            return AttributeArrays.unknown(len(rows))
        if rows.size == 0 or rows.min() >= 0:  # every row known (serving's candidates): plain gathers
            return self._subset(rows)
        known = rows >= 0
        safe = np.where(known, rows, 0)
        listed = np.zeros(len(self), dtype=np.int8) if self.status is None else self.status
        return AttributeArrays(np.where(known, self.category[safe], UNKNOWN).astype(np.int32),
                              np.where(known, self.brand[safe], UNKNOWN).astype(np.int32),
                              np.where(known, self.price[safe], np.nan),
                              self.category_names, self.brand_names,
                              np.where(known, listed[safe], WITHDRAWN).astype(np.int8))

    def _subset(self, rows: np.ndarray) -> AttributeArrays:
        """take() of known rows, sharing the name -> code lookups (a request's candidates: rebuilding the brand
        lookup cost more than the gathers)."""
        out = copy.copy(self)
        status = None if self.status is None else self.status[rows]
        for name, values in (("category", self.category[rows]), ("brand", self.brand[rows]),
                             ("price", self.price[rows]), ("status", status if status is not None and status.any()
                                                           else None)):
            object.__setattr__(out, name, values)
        return out

    def servable(self, include_unavailable: bool = False) -> np.ndarray | None:
        """Items serving may return (None: all of them): never a withdrawn one, an unavailable one only
        when asked."""
        if self.status is None:
            return None
        return self.status <= (UNAVAILABLE if include_unavailable else SERVABLE)

    def is_servable(self, row: int, include_unavailable: bool = False) -> bool:
        if self.status is None:
            return True
        return int(self.status[row]) <= (UNAVAILABLE if include_unavailable else SERVABLE)

    def mask(self, category: str | None = None, brand: str | None = None, min_price: float | None = None,
             max_price: float | None = None, include_unavailable: bool = False) -> np.ndarray | None:
        """Items passing every filter that is set and that may be served (None: no filter set, every item
        servable); unknown values fail a set filter."""
        keep: np.ndarray | None = None
        for part in (self.servable(include_unavailable),
                     self._equals(self.category, self.category_code, category),
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

    def patched(self, changes: Mapping[int, Mapping], n: int | None = None,
                listed: frozenset[int] = frozenset()) -> AttributeArrays:
        """Copies grown to n rows (new rows unknown and servable) with row -> changed fields laid over them (any
        of category, brand, price, available, blocked; a field left out keeps its value). Rows in `listed`
        were withdrawn only for lacking a catalogue row: the change lists them, so they start servable."""
        n = len(self) if n is None else n
        category, brand = _grown(self.category, n, UNKNOWN), _grown(self.brand, n, UNKNOWN)
        price = _grown(self.price, n, np.nan)
        status = _grown(np.zeros(len(self), np.int8) if self.status is None else self.status, n, SERVABLE)
        categories, brands = dict(self.category_code), dict(self.brand_code)
        for i, row in changes.items():
            if i in listed:
                status[i] = SERVABLE
            if "category" in row:
                category[i] = _code(categories, row["category"])
            if "brand" in row:
                brand[i] = _code(brands, row["brand"])
            if "price" in row:
                price[i] = np.nan if row["price"] is None else float(row["price"])
            if "available" in row or "blocked" in row:
                was = int(status[i])
                available = row.get("available", None if was != UNAVAILABLE else False)
                blocked = row.get("blocked", was == WITHDRAWN)
                status[i] = status_of(available, blocked)
        return AttributeArrays(category, brand, price, tuple(categories), tuple(brands), status)

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
    def from_rows(cls, rows: Mapping[str, tuple]) -> ItemCatalogue:
        """item_id -> (category, brand, price[, status]); handy for tests and small catalogues."""
        ids = list(rows)
        values = [rows[i] for i in ids]
        return cls(ids, AttributeArrays.from_values([v[0] for v in values], [v[1] for v in values],
                                                   [v[2] for v in values],
                                                   [v[3] if len(v) > 3 else SERVABLE for v in values]))

    def align(self, item_ids: Sequence[str]) -> AttributeArrays:
        """Attributes aligned to `item_ids`; items the catalogue lacks get unknown attributes."""
        rows = np.fromiter((self.row.get(i, -1) for i in item_ids), dtype=np.int64, count=len(item_ids))
        return self.attributes.take(rows)

    def with_rows(self, rows: Mapping[str, Mapping]) -> ItemCatalogue:
        """This catalogue with live changes laid over it: item_id -> the fields that changed (any of category,
        brand, price, available, blocked; a field left out keeps its value). Ids it lacks are appended."""
        if not rows:
            return self
        ids = list(self.item_ids)
        changes: dict[int, Mapping] = {}
        for item, row in rows.items():
            i = self.row.get(item)
            if i is None:
                i = len(ids)
                ids.append(item)
            changes[i] = row
        return ItemCatalogue(ids, self.attributes.patched(changes, len(ids)))


def _code(codes: dict[str, int], name: str | None) -> int:
    """The code of `name`, a new one for a name not seen yet (UNKNOWN for None or blank)."""
    return UNKNOWN if not name else codes.setdefault(name, len(codes))


def _grown(values: np.ndarray, n: int, fill: float) -> np.ndarray:
    """A copy of `values` extended to n entries with `fill`."""
    out = np.full(n, fill, dtype=values.dtype)
    out[:len(values)] = values
    return out
