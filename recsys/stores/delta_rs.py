"""delta-rs plumbing for processes without a JVM: contract schemas in Arrow, tables created on first
write, and commits re-run when a concurrent writer wins.

The API's workers, the stream and the batch layer all commit to the same tables. Delta's optimistic
concurrency makes a losing commit fail (CommitFailedError) instead of corrupting the table; the loser
re-reads the table and runs its operation again, which is safe because every operation here
(merge by key, delete by predicate, update of one row, append) can be recomputed from the new snapshot.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import pyarrow as pa
from deltalake import DeltaTable, Field
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from recsys.config import DeltaRsConfig, Settings
from recsys.contracts.catalogue import check_id
from recsys.contracts.tables import TableSpec, split_top_level

log = logging.getLogger(__name__)
T = TypeVar("T")

# Spark DDL primitive types -> Arrow. TIMESTAMP is Spark's instant type: Delta "timestamp", which is
# Arrow microseconds with a time zone (a zone-less Arrow timestamp would become Delta "timestamp_ntz").
_PRIMITIVES: dict[str, pa.DataType] = {
    "STRING": pa.string(),
    "INT": pa.int32(),
    "BIGINT": pa.int64(),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "BINARY": pa.binary(),
}


class CommitConflictError(RuntimeError):
    """A Delta commit kept losing to concurrent writers after the configured re-runs (retry later)."""


def id_literal(value: str) -> str:
    """A user/item id as a quoted SQL literal for a Delta predicate. Ids that break the contract's id rule
    are refused, so no id can change the meaning of the predicate it goes into."""
    return f"'{check_id(value)}'"


def arrow_type(ddl_type: str) -> pa.DataType:
    """The Arrow type of one Spark DDL type, e.g. "MAP<STRING, STRING>"."""
    text = ddl_type.strip()
    upper = text.upper()
    if upper in _PRIMITIVES:
        return _PRIMITIVES[upper]
    if upper.startswith("ARRAY<") and upper.endswith(">"):
        return pa.list_(arrow_type(text[len("ARRAY<"):-1]))
    if upper.startswith("MAP<") and upper.endswith(">"):
        key, value = split_top_level(text[len("MAP<"):-1])
        return pa.map_(arrow_type(key), arrow_type(value))
    raise ValueError(f"no Arrow type for DDL type {ddl_type!r}")


def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The table's contract schema in Arrow; every column nullable, as Spark creates them."""
    return pa.schema([pa.field(name, arrow_type(ddl_type)) for name, ddl_type in spec.fields])


def open_table(settings: Settings, spec: TableSpec) -> DeltaTable | None:
    """The table at its configured path, or None when nothing was written there yet."""
    try:
        return DeltaTable(settings.table_path(spec.name))
    except TableNotFoundError:
        return None


def ensure_table(settings: Settings, spec: TableSpec) -> DeltaTable:
    """Create the table with the contract's schema and partitioning if missing, as the Spark side does
    (recsys.spark.delta.ensure_table); add contract columns an older table lacks (additions only).
    Two processes creating the same table at once: one commit fails, so call it inside with_commit_retries."""
    schema = arrow_schema(spec)
    table = DeltaTable.create(settings.table_path(spec.name), schema, mode="ignore",
                              partition_by=list(spec.partition_by) or None)
    existing = set(table.schema().to_arrow().names)
    missing = [Field.from_arrow(f) for f in schema if f.name not in existing]
    if missing:
        table.alter.add_columns(missing)
        table = DeltaTable(settings.table_path(spec.name))
    return table


def with_commit_retries(cfg: DeltaRsConfig, what: str, operation: Callable[[], T]) -> T:
    """Run `operation` (which must open the table itself, so each run sees the latest snapshot) and run
    it again after a random, doubling wait when its commit conflicts; CommitConflictError after
    cfg.commit_retries re-runs. Random waits keep workers that collided from colliding again."""
    for attempt in range(cfg.commit_retries + 1):
        try:
            return operation()
        except CommitFailedError as exc:
            if attempt == cfg.commit_retries:
                raise CommitConflictError(
                    f"{what}: the Delta commit conflicted with concurrent writers {attempt + 1} times; "
                    f"try again later ({exc})") from exc
            log.info("%s: commit conflict (attempt %d), running it again: %s", what, attempt + 1, exc)
            time.sleep(random.uniform(0, cfg.commit_backoff_s * 2 ** attempt))
    raise AssertionError("unreachable")
