"""Parse raw file columns into contract values: times in any common format, ids, numbers.

Every parser returns the parsed values with missing/NaT/NaN where a value could not be parsed, so the
loader can quarantine exactly those rows with a reason instead of failing the whole file.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from recsys.data.frames import TS_DTYPE
from recsys.data.mapping import FieldSpec

# An explicit offset or zone at the end of a time string: parsed as such, not in the mapping's timezone.
_HAS_OFFSET = re.compile(r"(?:[zZ]|[+-]\d\d:?\d\d|\s?(?:UTC|GMT))\s*$")
_FLOAT_INTEGER = re.compile(r"-?\d+\.0+")
_NUMERIC = re.compile(r"^\s*[+-]?\d+(?:\.\d+)?\s*$")
_CURRENCY = re.compile(r"^(?:[£$€¥₹]|[A-Z]{3})\s*|\s*(?:[£$€¥₹]|[A-Z]{3})$")


def id_text(values: pd.Series) -> pd.Series:
    """Ids as text; integral floats lose their '.0' (a numeric id column with gaps reads, or was saved, as floats).

    In a text column only when every value looks like one, so a genuine id such as "12.0" among others stays.
    """
    if pd.api.types.is_float_dtype(values):
        integral = values.notna() & (values == np.floor(values.fillna(0)))
        text = values.astype(object).where(values.notna(), None)
        text[integral] = values[integral].astype(np.int64).astype(str)
        text[~integral & values.notna()] = values[~integral & values.notna()].astype(str)
        return text
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.astype(str).astype(object)
    text = values.astype(object).where(values.notna(), None)
    stripped = text.map(lambda v: None if v is None else (str(v).strip() or None))
    present = stripped.dropna().astype(str)
    if len(present) and present.str.fullmatch(_FLOAT_INTEGER).all():  # a numeric id column saved as floats
        return stripped.map(lambda v: None if v is None else v.split(".")[0])
    return stripped


def parse_times(values: pd.Series, spec: FieldSpec) -> pd.Series:
    """UTC microsecond timestamps; NaT where a value is missing or not a time.

    Accepts datetime columns, epoch numbers (unit from the spec or guessed from the magnitude) and
    strings: a given `format`, else the format pandas infers from the file (day-first per the spec),
    then ISO 8601, then element-wise parsing for the rest. Times without an offset are in `timezone`.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(TS_DTYPE)
    if pd.api.types.is_datetime64_dtype(values):
        return _localize(values, spec.timezone)
    if pd.api.types.is_numeric_dtype(values):
        return _epoch(pd.to_numeric(values, errors="coerce"), spec)
    text = values.astype("string").str.strip()
    text = text.where(text != "")
    out = pd.Series(pd.NaT, index=values.index, dtype=TS_DTYPE)
    numeric = text.str.match(_NUMERIC).fillna(False).astype(bool)
    if numeric.any() and spec.format is None:
        out[numeric] = _epoch(pd.to_numeric(text[numeric], errors="coerce"), spec)
    offset = text.str.contains(_HAS_OFFSET).fillna(False).astype(bool) & ~numeric
    if offset.any():
        out[offset] = _strings(text[offset], spec, utc=True)
    naive = text.notna() & ~numeric & ~offset
    if naive.any():
        out[naive] = _localize(_strings(text[naive], spec, utc=False), spec.timezone)
    return out


def _strings(text: pd.Series, spec: FieldSpec, utc: bool) -> pd.Series:
    if spec.format is not None:
        return pd.to_datetime(text, format=spec.format, errors="coerce", utc=utc)
    with warnings.catch_warnings():  # "could not infer format": the fallbacks below handle it
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(text, errors="coerce", dayfirst=spec.dayfirst, utc=utc)
    for fallback in ("ISO8601", "mixed"):
        left = parsed.isna() & text.notna()
        if not left.any():
            break
        parsed = parsed.copy()
        parsed[left] = pd.to_datetime(text[left], format=fallback, errors="coerce", dayfirst=spec.dayfirst,
                                      utc=utc)
    return parsed


def _localize(values: pd.Series, timezone: str) -> pd.Series:
    values = pd.to_datetime(values)
    if values.dt.tz is None:
        values = values.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
    return values.dt.tz_convert("UTC").astype(TS_DTYPE)


def _epoch(numbers: pd.Series, spec: FieldSpec) -> pd.Series:
    """Epoch numbers in the spec's unit, or each in the unit its magnitude implies (s, ms, us or ns)."""
    if spec.unit is not None:
        return pd.to_datetime(numbers, unit=spec.unit, errors="coerce", utc=True).astype(TS_DTYPE)
    magnitude = numbers.abs()
    # nanoseconds per unit: below 1e11 seconds reach year 5138, so larger numbers are finer units
    scale = np.select([magnitude < 1e11, magnitude < 1e14, magnitude < 1e17], [1e9, 1e6, 1e3], 1.0)
    return pd.to_datetime((numbers * scale).round(), unit="ns", errors="coerce", utc=True).astype(TS_DTYPE)


def parse_numbers(values: pd.Series, spec: FieldSpec) -> pd.Series:
    """float64 values; NaN where missing or not a number. Strings may carry currency signs and separators."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(np.float64)
    text = values.astype("string").str.strip()
    if spec.decimal_comma:
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        text = text.str.replace(",", "", regex=False)
    text = text.str.replace(_CURRENCY, "", regex=True)
    return pd.to_numeric(text.where(text != ""), errors="coerce").astype(np.float64)
