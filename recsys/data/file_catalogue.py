"""Items and users of a file load: from their own files, or derived from the events file's columns.

Derived attributes are each item's or user's most frequent value (ties: alphabetically first), a
catalogue price is the median price of the item's purchases; categories can also come from keywords in
the title (a proxy for shops that publish none).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.contracts.events import QuarantineReason
from recsys.data.file_columns import Rejects, column, ids_of, nones, sanitized, text_of
from recsys.data.frames import AGE_BANDS, age_bands, items_frame, users_frame
from recsys.data.mapping import CategorySpec, FieldSpec, ItemsMapping, Mapping, UsersMapping
from recsys.data.parsing import parse_numbers, parse_times

_WORD_SPLIT = r"[^A-Z0-9\-]+"


def _mode_per(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Most frequent non-missing value per key; ties go to the alphabetically first value (deterministic)."""
    frame = pd.DataFrame({"key": keys.to_numpy(), "value": values.to_numpy()}).dropna()
    counts = frame.groupby(["key", "value"]).size().reset_index(name="n")
    counts = counts.sort_values(["key", "n", "value"], ascending=[True, False, True])
    return counts.drop_duplicates("key").set_index("key")["value"]


def categorize(titles: pd.Series, raw: pd.DataFrame, spec: CategorySpec) -> pd.Series:
    """Category per row: the column, else the first keyword rule matching a word of the title, then rules."""
    if spec.column is not None:
        result = text_of(column(raw, FieldSpec(column=spec.column), "items.category"))
    else:
        result = nones(titles.index)
        words = titles.fillna("").astype(str).str.upper().str.split(_WORD_SPLIT, regex=True).map(set)
        for category, keywords in reversed(list(spec.keywords.items())):  # earlier rules overwrite later ones
            keys = frozenset(str(k).upper() for k in keywords)
            result[words.map(lambda found, keys=keys: not found.isdisjoint(keys)).astype(bool)] = category
    for rule in spec.rules:
        result[rule.when.mask(raw).to_numpy()] = rule.value
    if spec.default is not None:
        result = result.where(result.notna(), spec.default)
    return result


def items_from_events(accepted: pd.DataFrame, spec: ItemsMapping, as_of: pd.Timestamp) -> pd.DataFrame:
    """Catalogue rows of the items in the events: most frequent title/brand/category, median purchase price."""
    first = accepted.drop_duplicates("_item_id").set_index("_item_id")
    ids = pd.Index(sorted(first.index), name="item_id")
    first = first.reindex(ids)

    def mode(fspec: FieldSpec | None, what: str) -> pd.Series:
        if fspec is None:
            return nones(ids)
        return _mode_per(accepted["_item_id"], text_of(column(accepted, fspec, what))).reindex(ids)

    title = mode(spec.title, "items.title")
    if spec.category is None:
        category = nones(ids)
    elif spec.category.column is not None:
        category = mode(FieldSpec(column=spec.category.column), "items.category")
        category = categorize(category, first.assign(**{spec.category.column: category}), spec.category)
    else:
        category = categorize(title, first, spec.category)
    priced = accepted[accepted["_price"] > 0]
    price = (priced[priced["_type"] == "purchase"].groupby("_item_id")["_price"].median()
             .combine_first(priced.groupby("_item_id")["_price"].median()))
    return items_frame({"item_id": ids.to_numpy(), "title": title.to_numpy(), "category": category.to_numpy(),
                        "brand": mode(spec.brand, "items.brand").to_numpy(),
                        "price": price.reindex(ids).to_numpy(), "updated_at": as_of})


def users_from_events(accepted: pd.DataFrame, spec: UsersMapping, as_of: pd.Timestamp) -> pd.DataFrame:
    """User rows of the users in the events, each attribute their most frequent value."""
    ids = pd.Index(sorted(pd.unique(accepted["_user_id"])), name="user_id")

    def mode(fspec: FieldSpec | None, what: str) -> pd.Series:
        if fspec is None:
            return nones(ids)
        return _mode_per(accepted["_user_id"], text_of(column(accepted, fspec, what))).reindex(ids)

    return users_frame({"user_id": ids.to_numpy(),
                        "age_band": _age_band(mode(spec.age, "users.age"), mode(spec.age_band, "users.age_band")),
                        "gender": _mapped(mode(spec.gender, "users.gender"), spec.gender),
                        "location": mode(spec.location, "users.location").to_numpy(), "updated_at": as_of})


def _age_band(age: pd.Series, band: pd.Series) -> np.ndarray:
    from_age = age_bands(age)
    given = band.where(band.isin(AGE_BANDS), None)
    return given.where(given.notna(), from_age).astype(object).to_numpy()


def _mapped(values: pd.Series, spec: FieldSpec | None) -> np.ndarray:
    if spec is None or not spec.values:
        return values.to_numpy()
    table = {str(k).strip().lower(): v for k, v in spec.values.items()}
    return values.map(lambda v: None if v is None else table.get(str(v).strip().lower(), v)).to_numpy()


def _entity_ids(raw: pd.DataFrame, given: FieldSpec | None, fallback: FieldSpec, what: str,
                rejects: Rejects) -> pd.Series:
    ids = ids_of(raw, given or fallback, what)
    rejects.add(ids.isna(), QuarantineReason.MISSING_FIELD, f"missing_field:{what.split('.')[-1]}")
    return ids


def _optional_text(raw: pd.DataFrame, spec: FieldSpec | None, what: str) -> pd.Series:
    return nones(raw.index) if spec is None else text_of(column(raw, spec, what))


def _updated_at(raw: pd.DataFrame, spec: FieldSpec | None, as_of: pd.Timestamp) -> pd.Series:
    if spec is None:
        return pd.Series(as_of, index=raw.index)
    return parse_times(column(raw, spec, "updated_at"), spec).fillna(as_of)


def map_items_file(raw: pd.DataFrame, mapping: Mapping, source: str,
                   as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Catalogue rows of an items file; rows without an id are rejects, a bad price is left empty."""
    spec = mapping.items
    rejects = Rejects(raw.index)
    ids = _entity_ids(raw, spec.item_id, mapping.events.item_id, "items.item_id", rejects)
    title = _optional_text(raw, spec.title, "items.title")
    category = (nones(raw.index) if spec.category is None
                else categorize(title, raw, spec.category))
    price = (pd.Series(np.nan, index=raw.index) if spec.price is None
             else parse_numbers(column(raw, spec.price, "items.price"), spec.price))
    ok = rejects.ok
    frame = items_frame({"item_id": sanitized(ids[ok], "item_id").to_numpy(), "title": title[ok].to_numpy(),
                         "category": category[ok].to_numpy(),
                         "brand": _optional_text(raw, spec.brand, "items.brand")[ok].to_numpy(),
                         "price": price.where(price >= 0)[ok].to_numpy(),
                         "updated_at": _updated_at(raw, spec.updated_at, as_of)[ok].array})
    return frame.drop_duplicates("item_id", keep="last", ignore_index=True), rejects.frame(raw, "items", source)


def map_users_file(raw: pd.DataFrame, mapping: Mapping, source: str,
                   as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """User rows of a users file; rows without an id are rejects, unknown attributes are left empty."""
    spec = mapping.users
    rejects = Rejects(raw.index)
    ids = _entity_ids(raw, spec.user_id, mapping.events.user_id, "users.user_id", rejects)
    age = (nones(raw.index) if spec.age is None
           else parse_numbers(column(raw, spec.age, "users.age"), spec.age))
    ok = rejects.ok
    frame = users_frame({
        "user_id": sanitized(ids[ok], "user_id").to_numpy(),
        "age_band": _age_band(age[ok], _optional_text(raw, spec.age_band, "users.age_band")[ok]),
        "gender": _mapped(_optional_text(raw, spec.gender, "users.gender")[ok], spec.gender),
        "location": _optional_text(raw, spec.location, "users.location")[ok].to_numpy(),
        "updated_at": _updated_at(raw, spec.updated_at, as_of)[ok].array})
    return frame.drop_duplicates("user_id", keep="last", ignore_index=True), rejects.frame(raw, "users", source)
