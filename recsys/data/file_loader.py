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

from recsys.contracts.events import MAX_QUANTITY, QuarantineReason
from recsys.data.file_catalogue import items_from_events, map_items_file, map_users_file, users_from_events
from recsys.data.file_columns import REJECT_COLUMNS, Rejects, column, ids_of, nones, sanitized
from recsys.data.files import read_file
from recsys.data.frames import ShopData, events_frame, stable_ids
from recsys.data.mapping import EventsMapping, FieldSpec, Mapping
from recsys.data.mapping import event_type_of as _event_type_of
from recsys.data.parsing import id_text, parse_numbers, parse_times

log = logging.getLogger(__name__)

BAD_TS = "bad_ts"  # a time that does not parse (the stream only sees ISO strings, so it has no such reason)
Progress = Callable[[str, float | None, int], None]  # (table, fraction of its file read, rows read)
__all__ = ["BAD_TS", "REJECT_COLUMNS", "FileSources", "LoadResult", "TimeBounds", "load_files", "map_events"]


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


def _hash_text(values: pd.Series) -> pd.Series:
    return id_text(values) if pd.api.types.is_numeric_dtype(values) else values.astype(str)


def map_events(raw: pd.DataFrame, spec: EventsMapping, namespace: str, source: str,
               bounds: TimeBounds) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(contract events, the accepted raw rows, rejects) of one events file."""
    rejects = Rejects(raw.index)
    user = ids_of(raw, spec.user_id, "events.user_id")
    item = ids_of(raw, spec.item_id, "events.item_id")
    rejects.add(user.isna(), QuarantineReason.MISSING_FIELD, "missing_field:user_id")
    rejects.add(item.isna(), QuarantineReason.MISSING_FIELD, "missing_field:item_id")

    raw_type = column(raw, spec.event_type, "events.event_type")
    types = {v: _event_type_of(v, spec.event_type.values) for v in pd.unique(raw_type.dropna())}
    event_type = raw_type.map(types).astype(object)
    absolute = pd.Series(False, index=raw.index)
    context = nones(raw.index)
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

    raw_ts = column(raw, spec.ts, "events.ts")
    ts = parse_times(raw_ts, spec.ts)
    rejects.add(raw_ts.isna(), QuarantineReason.MISSING_FIELD, "missing_field:ts")
    rejects.add(ts.isna(), BAD_TS, "bad_ts:", raw_ts)
    latest = pd.Timestamp.now(tz="UTC") + timedelta(seconds=bounds.max_future_skew_s)
    rejects.add((ts < pd.Timestamp(bounds.min_ts)) | (ts > latest), QuarantineReason.ABSURD_TS,
                "absurd_ts:", ts)

    quantity = _quantity(raw, spec, absolute, rejects)
    price = _price(raw, spec, event_type, rejects)

    session = None if spec.session_id is None else ids_of(raw, spec.session_id, "events.session_id")
    event_id = _event_ids(raw, spec, namespace, user, item, event_type, raw_ts)
    if spec.event_id is not None and spec.event_id.column is not None:
        rejects.add(event_id.isna(), QuarantineReason.MISSING_FIELD, "missing_field:event_id")
        rejects.add(event_id.duplicated() & event_id.notna(), QuarantineReason.BAD_ID,
                    "bad_id:duplicate event_id ", event_id)

    ok = rejects.ok
    user_ids, item_ids = sanitized(user[ok], "user_id"), sanitized(item[ok], "item_id")
    events = events_frame({
        "event_id": sanitized(event_id[ok], "event_id").to_numpy(),
        "user_id": user_ids.to_numpy(),
        "item_id": item_ids.to_numpy(),
        "event_type": event_type[ok].to_numpy(),
        "ts": ts[ok].array,
        "session_id": None if session is None else sanitized(session[ok], "session_id").to_numpy(),
        "quantity": quantity[ok].to_numpy(),
        "price": price[ok].to_numpy(),
        "context": context[ok].to_numpy(),
    })
    # the accepted raw rows (file order) with their contract values: what items and users derive from
    accepted = raw[ok].assign(_user_id=user_ids, _item_id=item_ids, _ts=ts[ok], _type=event_type[ok],
                              _price=price[ok])
    return events, accepted, rejects.frame(raw, "events", source)


def _quantity(raw: pd.DataFrame, spec: EventsMapping, absolute: pd.Series, rejects: Rejects) -> pd.Series:
    if spec.quantity is None:
        return pd.Series(1, index=raw.index, dtype=np.int64)
    raw_q = column(raw, spec.quantity, "events.quantity")
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


def _price(raw: pd.DataFrame, spec: EventsMapping, event_type: pd.Series, rejects: Rejects) -> pd.Series:
    if spec.price is None:
        price = pd.Series(np.nan, index=raw.index)
        raw_p = nones(raw.index)
    else:
        raw_p = column(raw, spec.price, "events.price")
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
        return id_text(column(raw, FieldSpec(column=spec.event_id.column), "events.event_id"))
    if spec.event_id is not None:
        parts = [_hash_text(column(raw, FieldSpec(column=c), "events.event_id.hash")) for c in spec.event_id.hash]
    else:  # every mapped value: two identical rows differ only by their occurrence
        mapped = [s for s in (spec.session_id, spec.quantity, spec.price) if s is not None and s.column]
        parts = [user.astype(str), item.astype(str), event_type.astype(str), raw_ts.astype(str),
                 *[_hash_text(raw[s.column]) for s in mapped if s.column in raw]]
    keys = pd.DataFrame({f"k{i}": part.to_numpy() for i, part in enumerate(parts)}, index=raw.index)
    occurrence = keys.groupby(list(keys.columns), sort=False, dropna=False).cumcount()
    return pd.Series(stable_ids(namespace, *parts, occurrence), index=raw.index, dtype=object)
