"""Column mappings: how a shop's own events, items and users files become contract columns.

A mapping is a YAML file (conf/mappings/*.yaml, documented in docs/bring-your-own-data.md). Each
contract field names a column of the file (`user_id: CustomerID`) or a fuller spec
(`{column: CustomerID, prefix: c}`, `{value: purchase}`); rules override the event type, the quantity's
sign and the context for rows that match a condition. The models here only describe; recsys.data.files
applies them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recsys.config import PROJECT_ROOT, ConfigError
from recsys.contracts.events import EVENT_TYPES, ID_PATTERN

MAPPINGS_DIR = PROJECT_ROOT / "conf" / "mappings"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """A test on one raw column; a rule applies to the rows where every given test holds."""

    column: str
    equals: Any = None
    isin: list[Any] | None = Field(default=None, alias="in")
    startswith: str | None = None
    matches: str | None = None
    not_matches: str | None = None
    missing: bool | None = None

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        if self.column not in frame:
            raise ConfigError(f"mapping rule: no column {self.column!r} in {list(frame.columns)}")
        values = frame[self.column]
        text = values.astype("string").str.strip()
        out = pd.Series(True, index=frame.index)
        if self.equals is not None:
            out &= (text == str(self.equals)).fillna(False)
        if self.isin is not None:
            out &= text.isin([str(v) for v in self.isin]).fillna(False)
        if self.startswith is not None:
            out &= text.str.startswith(self.startswith).fillna(False)
        if self.matches is not None:
            out &= text.str.match(self.matches).fillna(False)
        if self.not_matches is not None:
            out &= ~text.str.match(self.not_matches).fillna(False)
        if self.missing is not None:
            out &= values.isna() == self.missing
        return out.astype(bool)


class FieldSpec(_Model):
    """Where one contract field comes from: a column (optionally transformed) or a constant value."""

    column: str | None = None
    value: Any = None
    prefix: str = ""                        # ids: prepended (e.g. "c" + customer number)
    values: dict[str, str] = {}             # raw value -> contract value (event type, gender), case-insensitive
    # times
    format: str | None = None               # strptime format; None = inferred per file, then ISO 8601 / mixed
    timezone: str = "UTC"                   # zone of times written without an offset
    dayfirst: bool = False                  # 01/02/2024 is 1 February
    unit: Literal["s", "ms", "us", "ns"] | None = None  # numeric epoch times; None = guessed from magnitude
    # numbers
    decimal_comma: bool = False             # "2,55" means 2.55 (and "." separates thousands)

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of 'column' or 'value'")
        return self


def _field(value: Any) -> Any:
    """Short form: a bare string names the column."""
    return {"column": value} if isinstance(value, str) else value


class ValueRule(_Model):
    when: Condition
    value: str


class CategorySpec(_Model):
    """Category from a column, or from keywords in the title (first matching rule wins), then rules."""

    column: str | None = None
    keywords: dict[str, list[str]] = {}
    rules: list[ValueRule] = []
    default: str | None = None


class EventRule(_Model):
    """Rows matching `when` get this event type and context; absolute_quantity flips negative quantities."""

    when: Condition
    event_type: str | None = None
    absolute_quantity: bool = False
    context: dict[str, str] | None = None

    @field_validator("event_type")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in EVENT_TYPES:
            raise ValueError(f"event_type {value!r} not one of {EVENT_TYPES}")
        return value


class EventIdSpec(_Model):
    """The event id: a column of the file, or a hash of columns (plus the row's occurrence of those values)."""

    column: str | None = None
    hash: list[str] | None = None

    @model_validator(mode="after")
    def _one(self) -> EventIdSpec:
        if (self.column is None) == (self.hash is None):
            raise ValueError("give exactly one of 'column' or 'hash'")
        return self


class EventsMapping(_Model):
    user_id: FieldSpec
    item_id: FieldSpec
    ts: FieldSpec
    event_type: FieldSpec = FieldSpec(value="purchase")
    session_id: FieldSpec | None = None
    quantity: FieldSpec | None = None
    price: FieldSpec | None = None
    event_id: EventIdSpec | None = None     # None: a hash of every mapped column
    rules: list[EventRule] = []             # first matching rule wins
    positive_price: list[str] = []          # event types whose rows need a price > 0 (else rejected)
    clip_quantity: bool = True              # quantities above the contract's maximum are capped, not rejected

    @field_validator("user_id", "item_id", "ts", "event_type", "session_id", "quantity", "price", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return _field(value)


class ItemsMapping(_Model):
    """Columns of the items file; without one, of the events file (title and category: most frequent)."""

    item_id: FieldSpec | None = None        # None: the events' item_id spec
    title: FieldSpec | None = None
    category: CategorySpec | None = None
    brand: FieldSpec | None = None
    price: FieldSpec | None = None          # without an items file: the median price of purchases
    updated_at: FieldSpec | None = None

    @field_validator("item_id", "title", "category", "brand", "price", "updated_at", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return _field(value)


class UsersMapping(_Model):
    """Columns of the users file; without one, of the events file (most frequent value per user)."""

    user_id: FieldSpec | None = None        # None: the events' user_id spec
    age: FieldSpec | None = None            # years, bucketed into the contract's age bands
    age_band: FieldSpec | None = None       # already a band such as 25-34
    gender: FieldSpec | None = None
    location: FieldSpec | None = None
    updated_at: FieldSpec | None = None

    @field_validator("user_id", "age", "age_band", "gender", "location", "updated_at", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return _field(value)


class Mapping(_Model):
    name: str = Field(pattern=ID_PATTERN)   # namespace of hashed event ids: keep it to re-load the same shop
    events: EventsMapping
    items: ItemsMapping = ItemsMapping()
    users: UsersMapping = UsersMapping()



def read_mapping(path: str | Path) -> Mapping:
    """Load and check a mapping file; a bare name is looked up in conf/mappings/ (`online-retail`)."""
    path = Path(path)
    if not path.suffix and not path.exists():
        path = MAPPINGS_DIR / f"{path}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"mapping {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"mapping {path}: not valid YAML: {exc}") from exc
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"mapping {path}: {_short(exc)}") from exc


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


_SYNONYMS = {"view": "view", "pageview": "view", "page_view": "view", "detail": "view", "click": "click",
             "addtocart": "add_to_cart", "add_to_cart": "add_to_cart", "cart": "add_to_cart",
             "add": "add_to_cart", "removefromcart": "remove_from_cart", "remove_from_cart": "remove_from_cart",
             "remove": "remove_from_cart", "purchase": "purchase", "buy": "purchase", "order": "purchase",
             "transaction": "purchase", "sale": "purchase", "checkout": "purchase"}
_NORMALISE = re.compile(r"[\s\-]+")


def event_type_of(raw: str, values: dict[str, str]) -> str | None:
    """The contract event type of a raw value: the mapping's table first, then common names."""
    key = str(raw).strip().lower()
    lowered = {str(k).strip().lower(): v for k, v in values.items()}
    if key in lowered:
        return lowered[key]
    return _SYNONYMS.get(_NORMALISE.sub("_", key)) or _SYNONYMS.get(_NORMALISE.sub("", key))
