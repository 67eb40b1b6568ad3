"""Catalogue and user attributes written from the API: an interface and a Delta (delta-rs) implementation.

Rows are merged by id (update when the id exists, insert otherwise) in one commit per batch, the same
MERGE the backfill does with Spark (recsys.batch.backfill.upsert_rows), so the batch layer reads them
the same way whoever wrote them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import pyarrow as pa

from recsys.config import Settings
from recsys.contracts.catalogue import AttributeRow, ItemAttributes, ItemPatch, UserAttributes
from recsys.contracts.tables import ITEMS, USERS, TableSpec
from recsys.stores.delta_rs import arrow_schema, ensure_table, with_commit_retries


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int


class AttributeStore(Protocol):
    def upsert_items(self, rows: Sequence[ItemAttributes]) -> UpsertCounts: ...

    def patch_items(self, rows: Sequence[ItemPatch]) -> UpsertCounts: ...

    def upsert_users(self, rows: Sequence[UserAttributes]) -> UpsertCounts: ...


class DeltaAttributeStore:
    """Upserts into the contract's `items` and `users` tables, creating them on the first write."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def upsert_items(self, rows: Sequence[ItemAttributes]) -> UpsertCounts:
        return self._upsert(ITEMS, ItemAttributes, rows)

    def upsert_users(self, rows: Sequence[UserAttributes]) -> UpsertCounts:
        return self._upsert(USERS, UserAttributes, rows)

    def patch_items(self, rows: Sequence[ItemPatch]) -> UpsertCounts:
        """One MERGE that changes only the fields each row sent (a column `_set_<field>` says which), so
        concurrent patches of different fields of one item both land; an unknown id is inserted."""
        self._check(ITEMS, ItemPatch, rows)
        if not rows:
            return UpsertCounts(0, 0)
        latest: dict[str, dict] = {}
        for row in rows:  # patches of one id within a request are laid over each other in order
            latest.setdefault(row.item_id, {}).update(row.changes())
        fields = [name for name in ItemAttributes.model_fields if name != ItemAttributes.KEY]
        source = _source_table(ITEMS, [{**dict.fromkeys(fields), **changes} for changes in latest.values()],
                               datetime.now(UTC))
        for name in fields:
            source = source.append_column(f"_set_{name}", pa.array([name in c for c in latest.values()], pa.bool_()))
        updates = {name: f"CASE WHEN s._set_{name} THEN s.{name} ELSE t.{name} END" for name in fields}
        columns = [*ItemAttributes.model_fields, "updated_at"]

        def merge() -> dict:
            table = ensure_table(self._settings, ITEMS)
            return (table.merge(source, "t.item_id = s.item_id", source_alias="s", target_alias="t")
                    .when_matched_update({**updates, "updated_at": "s.updated_at"})
                    .when_not_matched_insert({name: f"s.{name}" for name in columns}).execute())

        metrics = with_commit_retries(self._settings.delta_rs, "patch of items", merge)
        return UpsertCounts(inserted=int(metrics["num_target_rows_inserted"]),
                            updated=int(metrics["num_target_rows_updated"]))

    def _check(self, spec: TableSpec, model: type[AttributeRow], rows: Sequence[AttributeRow]) -> None:
        limit = self._settings.delta_rs.max_upsert_rows
        if len(rows) > limit:
            raise ValueError(f"{len(rows)} rows in one upsert; at most {limit} (delta_rs.max_upsert_rows)")
        if not all(isinstance(row, model) for row in rows):
            raise TypeError(f"{spec.name} rows must be {model.__name__} instances")

    def _upsert(self, spec: TableSpec, model: type[AttributeRow], rows: Sequence[AttributeRow]) -> UpsertCounts:
        """One MERGE of `rows` (the last row wins when an id repeats), every row stamped with the same
        updated_at; a commit conflict re-runs the whole merge on the new snapshot."""
        self._check(spec, model, rows)
        if not rows:
            return UpsertCounts(0, 0)
        key = model.KEY
        latest = {getattr(row, key): row.model_dump() for row in rows}
        source = _source_table(spec, list(latest.values()), datetime.now(UTC))

        def merge() -> dict:
            table = ensure_table(self._settings, spec)
            return (table.merge(source, f"t.{key} = s.{key}", source_alias="s", target_alias="t")
                    .when_matched_update_all().when_not_matched_insert_all().execute())

        metrics = with_commit_retries(self._settings.delta_rs, f"upsert into {spec.name}", merge)
        return UpsertCounts(inserted=int(metrics["num_target_rows_inserted"]),
                            updated=int(metrics["num_target_rows_updated"]))


def _source_table(spec: TableSpec, rows: list[dict], updated_at: datetime) -> pa.Table:
    """The rows in exactly the table's contract columns and types (the store sets updated_at)."""
    schema = arrow_schema(spec)
    stamped = [{**row, "updated_at": updated_at} for row in rows]
    return pa.Table.from_pylist(stamped, schema=schema)
