"""Column helpers of the file loader: where a mapped value comes from, and the rows rejected so far.

Each check rejects the rows it fails that no earlier check rejected (the first failing check wins, as in
the stream's quarantine); the reject frame keeps the file, the 1-based row and the raw values as JSON.
"""

from __future__ import annotations

import pandas as pd

from recsys.config import ConfigError
from recsys.data.frames import check_injective, sanitize_ids
from recsys.data.mapping import FieldSpec
from recsys.data.parsing import id_text

REJECT_COLUMNS = ("table", "source", "row", "reason", "detail", "raw")


class Rejects:
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


def nones(index: pd.Index) -> pd.Series:
    return pd.Series([None] * len(index), index=index, dtype=object)


def column(raw: pd.DataFrame, spec: FieldSpec, what: str) -> pd.Series:
    if spec.column is None:
        return pd.Series([spec.value] * len(raw), index=raw.index, dtype=object)
    if spec.column not in raw:
        raise ConfigError(f"mapping {what}: column {spec.column!r} is not in the file; it has {list(raw.columns)}")
    return raw[spec.column]


def ids_of(raw: pd.DataFrame, spec: FieldSpec, what: str) -> pd.Series:
    text = id_text(column(raw, spec, what))
    return text.map(lambda v: None if v is None else spec.prefix + v)


def sanitized(values: pd.Series, what: str) -> pd.Series:
    """Contract-safe ids; None stays None; refuses when sanitising would merge distinct ids."""
    present = values.notna()
    out = pd.Series(None, index=values.index, dtype=object)
    if present.any():
        clean = sanitize_ids(values[present])
        check_injective(values[present], clean, what)
        out[present] = clean
    return out


def text_of(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), None).map(lambda v: None if v is None else
                                                                  (str(v).strip() or None))
