"""The frames every data source returns, shaped like the event payload, ITEMS and USERS contracts.

Sources build plain columns and hand them to the `*_frame` helpers, so column order and dtypes
(tz-aware UTC microsecond timestamps, int32 quantity, float64 price) are decided in one place.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys.contracts.catalogue import LIVE_ITEM_FIELDS
from recsys.contracts.events import ID_PATTERN, MAX_ID_LENGTH, Event
from recsys.contracts.tables import EVENT_PAYLOAD_DDL, ITEMS, USERS, TableSpec

EVENT_COLUMNS: tuple[str, ...] = tuple(TableSpec("event_payload", EVENT_PAYLOAD_DDL).columns)
# Data sources give the descriptive attributes; the live ones (available, stock, blocked) come through the API.
ITEM_COLUMNS: tuple[str, ...] = tuple(c for c in ITEMS.columns if c not in LIVE_ITEM_FIELDS)
USER_COLUMNS: tuple[str, ...] = tuple(USERS.columns)

# Delta and Spark store microseconds; nanosecond frames would be truncated (or rejected) on write.
TS_DTYPE = pd.DatetimeTZDtype(unit="us", tz="UTC")

AGE_BANDS: tuple[str, ...] = ("0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_BAND_EDGES: tuple[float, ...] = (0, 18, 25, 35, 45, 55, 65, math.inf)

_ID_RE = re.compile(ID_PATTERN)
_ID_REPLACEMENT = "_"
_ID_HASH_BYTES = 16
_ID_PART_SEPARATOR = "\x1f"  # ASCII unit separator: keeps ("a", "bc") and ("ab", "c") apart


@dataclass(frozen=True)
class ShopData:
    """Events, item catalogue and user attributes of one shop, with contract column names."""

    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame

    def __post_init__(self) -> None:
        for name, frame, expected in (("events", self.events, EVENT_COLUMNS),
                                      ("items", self.items, ITEM_COLUMNS),
                                      ("users", self.users, USER_COLUMNS)):
            if tuple(frame.columns) != expected:
                raise ValueError(f"{name} columns {list(frame.columns)} != contract {list(expected)}")


def sanitize_ids(values: pd.Series) -> pd.Series:
    """Map raw ids onto ID_PATTERN by replacing forbidden characters, so a source's ids stay recognisable.

    Deterministic, so the same raw id always yields the same id; callers that must stay one-to-one
    check for collisions (see `check_injective`).
    """
    mapping = {raw: _sanitize_id(str(raw)) for raw in pd.unique(values)}
    return values.map(mapping)


def check_injective(raw: pd.Series, clean: pd.Series, what: str) -> None:
    """Raise when sanitising merged distinct raw ids into one, which would silently merge entities."""
    pairs = pd.DataFrame({"raw": raw.to_numpy(), "clean": clean.to_numpy()}).drop_duplicates()
    merged = pairs[pairs.duplicated("clean", keep=False)]
    if not merged.empty:
        sample = merged.sort_values("clean").head(6).to_dict("records")
        raise ValueError(f"sanitising {what} ids merges distinct ids, e.g. {sample}")


def stable_ids(namespace: str, *parts: Sequence[Any]) -> np.ndarray:
    """Content-derived hex ids: re-loading the same source yields the same event ids (idempotent writes)."""
    lengths = {len(part) for part in parts}
    if len(lengths) > 1:
        raise ValueError(f"parts differ in length: {sorted(lengths)}")
    joined = np.full(lengths.pop() if lengths else 0, namespace, dtype=object)
    for part in parts:
        joined = joined + _ID_PART_SEPARATOR + pd.Series(part).astype(str).to_numpy(dtype=object)
    digests = [hashlib.blake2b(text.encode(), digest_size=_ID_HASH_BYTES).hexdigest() for text in joined]
    return np.array(digests, dtype=object)


def random_hex_ids(rng: np.random.Generator, n: int, n_bytes: int = _ID_HASH_BYTES) -> np.ndarray:
    """n random hex ids drawn from rng (reproducible by seed), without a Python loop per id."""
    text = rng.bytes(n * n_bytes).hex().encode("ascii")
    return np.frombuffer(text, dtype=f"S{2 * n_bytes}").astype(str).astype(object)


def age_bands(ages: pd.Series) -> pd.Series:
    """Bucket ages into AGE_BANDS; unknown or negative ages become None."""
    banded = pd.cut(pd.to_numeric(ages, errors="coerce"), bins=list(_AGE_BAND_EDGES), labels=list(AGE_BANDS),
                    right=False)
    return banded.astype(object).where(banded.notna(), None)


def events_frame(columns: dict[str, Any]) -> pd.DataFrame:
    """Event columns in contract order and dtypes, sorted by ts; `context` may be omitted (all None)."""
    frame = pd.DataFrame(columns)
    if "context" not in frame:
        frame["context"] = None
    frame["ts"] = _to_utc(frame["ts"])
    frame["quantity"] = frame["quantity"].astype(np.int32)
    frame["price"] = frame["price"].astype(np.float64)
    # stable: simultaneous events keep the source's order (a session's steps, an invoice's lines)
    frame = frame.sort_values("ts", kind="stable", ignore_index=True)
    return frame[list(EVENT_COLUMNS)]


def items_frame(columns: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame["price"] = frame["price"].astype(np.float64)
    frame["updated_at"] = _to_utc(frame["updated_at"])
    return frame[list(ITEM_COLUMNS)].sort_values("item_id", ignore_index=True)


def users_frame(columns: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame["updated_at"] = _to_utc(frame["updated_at"])
    return frame[list(USER_COLUMNS)].sort_values("user_id", ignore_index=True)


def iter_events(events: pd.DataFrame) -> Iterator[Event]:
    """Validate rows of an events frame as contract `Event`s (e.g. to replay them through the API)."""
    for row in events.to_dict("records"):
        price = row["price"]
        row["price"] = None if price is None or math.isnan(price) else price
        row["ts"] = row["ts"].to_pydatetime()
        yield Event(**{key: value for key, value in row.items() if value is not None})


def _sanitize_id(raw: str) -> str:
    if not raw:
        raise ValueError("empty id")
    if len(raw) <= MAX_ID_LENGTH and _ID_RE.match(raw):
        return raw
    return "".join(char if _ID_RE.match(char) else _ID_REPLACEMENT for char in raw[:MAX_ID_LENGTH])


def _to_utc(values: pd.Series) -> pd.Series:
    ts = pd.to_datetime(values)
    ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    return ts.astype(TS_DTYPE)
