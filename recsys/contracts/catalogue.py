"""The attribute contract: what one catalogue item and one user's attributes are, as written to the
`items` and `users` tables (PUT /v1/items, PUT /v1/users, recsys.stores.attribute_store).

The API validates request bodies with these models and the store writes exactly their fields plus
`updated_at`, so the two cannot drift. A row replaces the stored one (PUT): a field left out is stored
as NULL. A patch (PATCH, ItemPatch) changes only the fields it sends. `available` NULL counts as
available; `blocked` true removes the item from every answer (a deleted or blocked item), `available`
false only from answers that did not ask for unavailable items (sold out).
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.contracts.events import ID_PATTERN, MAX_ID_LENGTH, whole_number

# Bounds keep one row small in Delta, in the content profiles (title words) and in segment keys.
MAX_TITLE_LENGTH = 512
MAX_ATTRIBUTE_LENGTH = 128
MAX_STOCK = 2**31 - 1  # the table's INT column


def check_id(value: str) -> str:
    """The event contract's id rule for an id that arrives on its own (a URL path, an admin call);
    raises ValueError. Ids that pass are safe inside Redis keys and Delta predicates."""
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH or not re.fullmatch(ID_PATTERN, value):
        raise ValueError(f"invalid id {value!r}: 1-{MAX_ID_LENGTH} characters matching {ID_PATTERN}")
    return value


class AttributeRow(BaseModel):
    """A row of an attribute table, keyed by one id column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    KEY: ClassVar[str]  # the id column rows are merged on


class ItemAttributes(AttributeRow):
    """One catalogue item (the `items` table without `updated_at`)."""

    KEY: ClassVar[str] = "item_id"

    item_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    title: str | None = Field(default=None, max_length=MAX_TITLE_LENGTH)
    category: str | None = Field(default=None, max_length=MAX_ATTRIBUTE_LENGTH)
    brand: str | None = Field(default=None, max_length=MAX_ATTRIBUTE_LENGTH)
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    available: bool | None = None  # None: available (rows written before the attribute existed)
    stock: int | None = Field(default=None, ge=0, le=MAX_STOCK)
    blocked: bool | None = None  # deleted or blocked: never served

    _whole_stock = field_validator("stock", mode="before")(whole_number)


# The catalogue's live attributes: set through the API (PUT/PATCH /v1/items), not by the file loaders.
LIVE_ITEM_FIELDS: tuple[str, ...] = ("available", "stock", "blocked")


class ItemPatch(ItemAttributes):
    """A partial update of one item: only the fields sent change (model_fields_set), the others keep
    their stored values; an item not stored yet is created with the fields sent."""

    def changes(self) -> dict:
        """The fields sent, the id included."""
        return {name: getattr(self, name) for name in self.model_fields_set | {self.KEY}}


class UserAttributes(AttributeRow):
    """One user's attributes (the `users` table without `updated_at`); they define cold-start segments."""

    KEY: ClassVar[str] = "user_id"

    user_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    age_band: str | None = Field(default=None, max_length=MAX_ATTRIBUTE_LENGTH)
    gender: str | None = Field(default=None, max_length=MAX_ATTRIBUTE_LENGTH)
    location: str | None = Field(default=None, max_length=MAX_ATTRIBUTE_LENGTH)
