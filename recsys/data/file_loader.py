"""A shop's own files as ShopData: events (and optionally items and users) through a column mapping.

Each row either becomes a contract event or a reject with a reason (the stream's reasons,
recsys.contracts.events.QuarantineReason, plus `bad_ts` for a time that does not parse) and the raw
values, which the backfill quarantines. Event ids are taken from a column or hashed from the row's
values and their occurrence in the file, so loading the same file again yields the same ids (and Delta
writes nothing new). Without an items or users file the catalogue and the users come from the events
file's columns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.config import ConfigError
from recsys.contracts.events import MAX_QUANTITY, QuarantineReason
from recsys.data.files import read_file
from recsys.data.frames import (
    AGE_BANDS,
    ShopData,
    age_bands,
    check_injective,
    events_frame,
    items_frame,
    sanitize_ids,
    stable_ids,
    users_frame,
)
from recsys.data.mapping import CategorySpec, EventsMapping, FieldSpec, ItemsMapping, Mapping, UsersMapping
from recsys.data.mapping import event_type_of as _event_type_of
from recsys.data.parsing import id_text, parse_numbers, parse_times

log = logging.getLogger(__name__)

BAD_TS = "bad_ts"  # a time that does not parse (the stream only sees ISO strings, so it has no such reason)
REJECT_COLUMNS = ("table", "source", "row", "reason", "detail", "raw")
_WORD_SPLIT = r"[^A-Z0-9\-]+"

Progress = Callable[[str, float | None, int], None]  # (table, fraction of its file read, rows read)


@dataclass(frozen=True)
class FileSources:
    events: Path
    items: Path | None = None
    users: Path | None = None
    fmt: str | None = None          # csv, tsv, parquet or jsonl; None = from each file's name


@dataclass(frozen=True)
class TimeBounds:
    """Events outside [min_ts, now + max_future_skew] are absurd (events.min_ts / max_future_skew_s)."""

    min_ts: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future_skew_s: int = 86_400


@dataclass(frozen=True)
class LoadResult:
    shop: ShopData
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REJECT_COLUMNS)))

    def summary(self, examples: int = 1) -> dict:
        """Rows read and rejected, per table and reason, with an example detail of each reason."""
        out: dict = {"events": len(self.shop.events), "items": len(self.shop.items), "users": len(self.shop.users),
                     "rejected": len(self.rejects), "reasons": {}}
        for (table, reason), group in self.rejects.groupby(["table", "reason"], sort=True):
            out["reasons"][f"{table}:{reason}"] = {"rows": len(group),
                                                   "e.g.": group["detail"].head(examples).tolist()}
        return out


def load_files(sources: FileSources, mapping: Mapping, bounds: TimeBounds | None = None,
               chunk_rows: int = 100_000, on_progress: Progress | None = None) -> LoadResult:
    """Read the files, map their columns and split every row into contract data or a reject."""
    def reader(table: str):
        return None if on_progress is None else lambda fraction, rows: on_progress(table, fraction, rows)

    raw = read_file(sources.events, sources.fmt, chunk_rows, reader("events"))
    events, accepted, rejects = map_events(raw, mapping.events, mapping.name, str(sources.events),
                                           bounds or TimeBounds())
    as_of = events["ts"].max() if len(events) else pd.Timestamp.now(tz="UTC")
    all_rejects = [rejects]
    if sources.items is not None:
        items_raw = read_file(sources.items, sources.fmt, chunk_rows, reader("items"))
        items, item_rejects = map_items_file(items_raw, mapping, str(sources.items), as_of)
        all_rejects.append(item_rejects)
    else:
        items = items_from_events(accepted, mapping.items, as_of)
    if sources.users is not None:
        users_raw = read_file(sources.users, sources.fmt, chunk_rows, reader("users"))
        users, user_rejects = map_users_file(users_raw, mapping, str(sources.users), as_of)
        all_rejects.append(user_rejects)
    else:
        users = users_from_events(accepted, mapping.users, as_of)
    result = LoadResult(ShopData(events=events, items=items, users=users),
                        pd.concat(all_rejects, ignore_index=True))
    log.info("mapped %s", result.summary())
    return result


class _Rejects:
    """The first failing check of each row wins, as in the stream's quarantine."""

    def __init__(self, index: pd.Index) -> None:
        self.reason = pd.Series(None, index=index, dtype=object)
        self.detail = pd.Series(None, index=index, dtype=object)

    def add(self, mask: pd.Series, reason: str, detail: str, values: pd.Series | None = None) -> None:
        """Reject the rows of mask not rejected yet; the detail is followed by each row's value, if given."""
        new = mask.fillna(False).astype(bool) & self.reason.isna()
        if new.any():
            self.reason[new] = reason
            self.detail[new] = detail if values is None else detail + values[new].astype(str)

    @property
    def ok(self) -> pd.Series:
        return self.reason.isna()

    def frame(self, raw: pd.DataFrame, table: str, source: str) -> pd.DataFrame:
        bad = self.reason.notna()
        rows = raw[bad]
        return pd.DataFrame({
            "table": table, "source": source, "row": rows.index.to_numpy() + 1,
            "reason": self.reason[bad].to_numpy(), "detail": self.detail[bad].to_numpy(),
            "raw": rows.to_json(orient="records", lines=True, date_format="iso", default_handler=str).splitlines()
            if len(rows) else [],
        }, columns=list(REJECT_COLUMNS))


def _nones(index: pd.Index) -> pd.Series:
    return pd.Series([None] * len(index), index=index, dtype=object)


def _column(raw: pd.DataFrame, spec: FieldSpec, what: str) -> pd.Series:
    if spec.column is None:
        return pd.Series([spec.value] * len(raw), index=raw.index, dtype=object)
    if spec.column not in raw:
        raise ConfigError(f"mapping {what}: column {spec.column!r} is not in the file; it has {list(raw.columns)}")
    return raw[spec.column]


def _ids(raw: pd.DataFrame, spec: FieldSpec, what: str) -> pd.Series:
    text = id_text(_column(raw, spec, what))
    return text.map(lambda v: None if v is None else spec.prefix + v)


def _sanitized(values: pd.Series, what: str) -> pd.Series:
    """Contract-safe ids; None stays None; refuses when sanitising would merge distinct ids."""
    present = values.notna()
    out = pd.Series(None, index=values.index, dtype=object)
    if present.any():
        clean = sanitize_ids(values[present])
        check_injective(values[present], clean, what)
        out[present] = clean
    return out


def _hash_text(values: pd.Series) -> pd.Series:
    return id_text(values) if pd.api.types.is_numeric_dtype(values) else values.astype(str)


def map_events(raw: pd.DataFrame, spec: EventsMapping, namespace: str, source: str,
               bounds: TimeBounds) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(contract events, the accepted raw rows, rejects) of one events file."""
    rejects = _Rejects(raw.index)
    user = _ids(raw, spec.user_id, "events.user_id")
    item = _ids(raw, spec.item_id, "events.item_id")
    rejects.add(user.isna(), QuarantineReason.MISSING_FIELD, "missing_field:user_id")
    rejects.add(item.isna(), QuarantineReason.MISSING_FIELD, "missing_field:item_id")

    raw_type = _column(raw, spec.event_type, "events.event_type")
    types = {v: _event_type_of(v, spec.event_type.values) for v in pd.unique(raw_type.dropna())}
    event_type = raw_type.map(types).astype(object)
    absolute = pd.Series(False, index=raw.index)
    context = _nones(raw.index)
    matched = pd.Series(False, index=raw.index)
    for rule in spec.rules:
        hit = rule.when.mask(raw) & ~matched
        matched |= hit
        if rule.event_type is not None:
            event_type[hit] = rule.event_type
        absolute[hit] = rule.absolute_quantity
        if rule.context is not None:
            context[hit] = pd.Series([dict(rule.context) for _ in range(int(hit.sum()))],
                                     index=hit[hit].index, dtype=object)
    rejects.add(raw_type.isna() & ~matched, QuarantineReason.MISSING_FIELD, "missing_field:event_type")
    rejects.add(event_type.isna(), QuarantineReason.UNKNOWN_EVENT_TYPE,
                "unknown_event_type:", raw_type)

    raw_ts = _column(raw, spec.ts, "events.ts")
    ts = parse_times(raw_ts, spec.ts)
    rejects.add(raw_ts.isna(), QuarantineReason.MISSING_FIELD, "missing_field:ts")
    rejects.add(ts.isna(), BAD_TS, "bad_ts:", raw_ts)
    latest = pd.Timestamp.now(tz="UTC") + timedelta(seconds=bounds.max_future_skew_s)
    rejects.add((ts < pd.Timestamp(bounds.min_ts)) | (ts > latest), QuarantineReason.ABSURD_TS,
                "absurd_ts:", ts)

    quantity = _quantity(raw, spec, absolute, rejects)
    price = _price(raw, spec, event_type, rejects)

    session = None if spec.session_id is None else _ids(raw, spec.session_id, "events.session_id")
    event_id = _event_ids(raw, spec, namespace, user, item, event_type, raw_ts)
    if spec.event_id is not None and spec.event_id.column is not None:
        rejects.add(event_id.isna(), QuarantineReason.MISSING_FIELD, "missing_field:event_id")
        rejects.add(event_id.duplicated() & event_id.notna(), QuarantineReason.BAD_ID,
                    "bad_id:duplicate event_id ", event_id)

    ok = rejects.ok
    user_ids, item_ids = _sanitized(user[ok], "user_id"), _sanitized(item[ok], "item_id")
    events = events_frame({
        "event_id": _sanitized(event_id[ok], "event_id").to_numpy(),
        "user_id": user_ids.to_numpy(),
        "item_id": item_ids.to_numpy(),
        "event_type": event_type[ok].to_numpy(),
        "ts": ts[ok].array,
        "session_id": None if session is None else _sanitized(session[ok], "session_id").to_numpy(),
        "quantity": quantity[ok].to_numpy(),
        "price": price[ok].to_numpy(),
        "context": context[ok].to_numpy(),
    })
    # the accepted raw rows (file order) with their contract values: what items and users derive from
    accepted = raw[ok].assign(_user_id=user_ids, _item_id=item_ids, _ts=ts[ok], _type=event_type[ok],
                              _price=price[ok])
    return events, accepted, rejects.frame(raw, "events", source)


def _quantity(raw: pd.DataFrame, spec: EventsMapping, absolute: pd.Series, rejects: _Rejects) -> pd.Series:
    if spec.quantity is None:
        return pd.Series(1, index=raw.index, dtype=np.int64)
    raw_q = _column(raw, spec.quantity, "events.quantity")
    q = parse_numbers(raw_q, spec.quantity)
    q = q.where(raw_q.notna(), 1.0)  # the contract's default
    q = q.where(~absolute, q.abs())
    rejects.add(q.isna() | (q != np.floor(q)), QuarantineReason.BAD_QUANTITY, "bad_quantity:", raw_q)
    rejects.add(q < 1, QuarantineReason.BAD_QUANTITY, "bad_quantity:", raw_q)
    if spec.clip_quantity:
        q = q.clip(upper=MAX_QUANTITY)
    else:
        rejects.add(q > MAX_QUANTITY, QuarantineReason.BAD_QUANTITY, "bad_quantity:", raw_q)
    return q.fillna(1).clip(1, MAX_QUANTITY).astype(np.int64)


def _price(raw: pd.DataFrame, spec: EventsMapping, event_type: pd.Series, rejects: _Rejects) -> pd.Series:
    if spec.price is None:
        price = pd.Series(np.nan, index=raw.index)
        raw_p = _nones(raw.index)
    else:
        raw_p = _column(raw, spec.price, "events.price")
        price = parse_numbers(raw_p, spec.price)
        rejects.add(raw_p.notna() & price.isna(), QuarantineReason.BAD_PRICE, "bad_price:", raw_p)
        rejects.add(price < 0, QuarantineReason.BAD_PRICE, "bad_price:", raw_p)
    if spec.positive_price:
        needs = event_type.isin(spec.positive_price)
        rejects.add(needs & ~(price > 0), QuarantineReason.BAD_PRICE,
                    "bad_price:not positive: ", raw_p)
    return price


def _event_ids(raw: pd.DataFrame, spec: EventsMapping, namespace: str, user: pd.Series, item: pd.Series,
               event_type: pd.Series, raw_ts: pd.Series) -> pd.Series:
    """From the id column, or hashed from columns plus the occurrence of those values in file order."""
    if spec.event_id is not None and spec.event_id.column is not None:
        return id_text(_column(raw, FieldSpec(column=spec.event_id.column), "events.event_id"))
    if spec.event_id is not None:
        parts = [_hash_text(_column(raw, FieldSpec(column=c), "events.event_id.hash")) for c in spec.event_id.hash]
    else:  # every mapped value: two identical rows differ only by their occurrence
        mapped = [s for s in (spec.session_id, spec.quantity, spec.price) if s is not None and s.column]
        parts = [user.astype(str), item.astype(str), event_type.astype(str), raw_ts.astype(str),
                 *[_hash_text(raw[s.column]) for s in mapped if s.column in raw]]
    keys = pd.DataFrame({f"k{i}": part.to_numpy() for i, part in enumerate(parts)}, index=raw.index)
    occurrence = keys.groupby(list(keys.columns), sort=False, dropna=False).cumcount()
    return pd.Series(stable_ids(namespace, *parts, occurrence), index=raw.index, dtype=object)


def _mode_per(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Most frequent non-missing value per key; ties go to the alphabetically first value (deterministic)."""
    frame = pd.DataFrame({"key": keys.to_numpy(), "value": values.to_numpy()}).dropna()
    counts = frame.groupby(["key", "value"]).size().reset_index(name="n")
    counts = counts.sort_values(["key", "n", "value"], ascending=[True, False, True])
    return counts.drop_duplicates("key").set_index("key")["value"]


def _text(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), None).map(lambda v: None if v is None else
                                                                  (str(v).strip() or None))


def categorize(titles: pd.Series, raw: pd.DataFrame, spec: CategorySpec) -> pd.Series:
    """Category per row: the column, else the first keyword rule matching a word of the title, then rules."""
    if spec.column is not None:
        result = _text(_column(raw, FieldSpec(column=spec.column), "items.category"))
    else:
        result = _nones(titles.index)
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
            return _nones(ids)
        return _mode_per(accepted["_item_id"], _text(_column(accepted, fspec, what))).reindex(ids)

    title = mode(spec.title, "items.title")
    if spec.category is None:
        category = _nones(ids)
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
            return _nones(ids)
        return _mode_per(accepted["_user_id"], _text(_column(accepted, fspec, what))).reindex(ids)

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
                rejects: _Rejects) -> pd.Series:
    ids = _ids(raw, given or fallback, what)
    rejects.add(ids.isna(), QuarantineReason.MISSING_FIELD, f"missing_field:{what.split('.')[-1]}")
    return ids


def _optional_text(raw: pd.DataFrame, spec: FieldSpec | None, what: str) -> pd.Series:
    return _nones(raw.index) if spec is None else _text(_column(raw, spec, what))


def _updated_at(raw: pd.DataFrame, spec: FieldSpec | None, as_of: pd.Timestamp) -> pd.Series:
    if spec is None:
        return pd.Series(as_of, index=raw.index)
    return parse_times(_column(raw, spec, "updated_at"), spec).fillna(as_of)


def map_items_file(raw: pd.DataFrame, mapping: Mapping, source: str,
                   as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Catalogue rows of an items file; rows without an id are rejects, a bad price is left empty."""
    spec = mapping.items
    rejects = _Rejects(raw.index)
    ids = _entity_ids(raw, spec.item_id, mapping.events.item_id, "items.item_id", rejects)
    title = _optional_text(raw, spec.title, "items.title")
    category = (_nones(raw.index) if spec.category is None
                else categorize(title, raw, spec.category))
    price = (pd.Series(np.nan, index=raw.index) if spec.price is None
             else parse_numbers(_column(raw, spec.price, "items.price"), spec.price))
    ok = rejects.ok
    frame = items_frame({"item_id": _sanitized(ids[ok], "item_id").to_numpy(), "title": title[ok].to_numpy(),
                         "category": category[ok].to_numpy(),
                         "brand": _optional_text(raw, spec.brand, "items.brand")[ok].to_numpy(),
                         "price": price.where(price >= 0)[ok].to_numpy(),
                         "updated_at": _updated_at(raw, spec.updated_at, as_of)[ok].array})
    return frame.drop_duplicates("item_id", keep="last", ignore_index=True), rejects.frame(raw, "items", source)


def map_users_file(raw: pd.DataFrame, mapping: Mapping, source: str,
                   as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """User rows of a users file; rows without an id are rejects, unknown attributes are left empty."""
    spec = mapping.users
    rejects = _Rejects(raw.index)
    ids = _entity_ids(raw, spec.user_id, mapping.events.user_id, "users.user_id", rejects)
    age = (_nones(raw.index) if spec.age is None
           else parse_numbers(_column(raw, spec.age, "users.age"), spec.age))
    ok = rejects.ok
    frame = users_frame({
        "user_id": _sanitized(ids[ok], "user_id").to_numpy(),
        "age_band": _age_band(age[ok], _optional_text(raw, spec.age_band, "users.age_band")[ok]),
        "gender": _mapped(_optional_text(raw, spec.gender, "users.gender")[ok], spec.gender),
        "location": _optional_text(raw, spec.location, "users.location")[ok].to_numpy(),
        "updated_at": _updated_at(raw, spec.updated_at, as_of)[ok].array})
    return frame.drop_duplicates("user_id", keep="last", ignore_index=True), rejects.frame(raw, "users", source)
