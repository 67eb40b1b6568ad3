"""Forgetting a user in the lake: an interface and a Delta (delta-rs) implementation.

The user's rows are deleted from every table of USER_DATA_TABLES, and the erasure is appended to
USER_ERASURES. The record matters because deleting is not enough: events the user sent before the
erasure may still be in Kafka and reach bronze afterwards; the batch layer drops them
(recsys.batch.interactions.drop_erased) by comparing their ts with erased_at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import pyarrow as pa
from deltalake import write_deltalake

from recsys.config import Settings
from recsys.contracts.catalogue import check_id
from recsys.contracts.tables import USER_DATA_TABLES, USER_ERASURES, TableSpec
from recsys.stores.delta_rs import arrow_schema, ensure_table, id_literal, open_table, with_commit_retries
from recsys.stores.model_store import query_delta


class ErasureStore(Protocol):
    def record_erasure(self, user_id: str, erased_at: datetime) -> None: ...

    def delete_user_rows(self, user_id: str) -> dict[str, int]: ...


class DeltaErasureStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def record_erasure(self, user_id: str, erased_at: datetime) -> None:
        """Append (user_id, erased_at): a repeated erasure adds a row (readers take the latest). A naive
        erased_at is UTC. Even an append can lose to a concurrent delete in delta-rs: it is re-run too."""
        check_id(user_id)
        at = erased_at.replace(tzinfo=UTC) if erased_at.tzinfo is None else erased_at.astimezone(UTC)
        row = pa.Table.from_pylist([{"user_id": user_id, "erased_at": at}], schema=arrow_schema(USER_ERASURES))

        def append() -> None:
            write_deltalake(ensure_table(self._settings, USER_ERASURES), row, mode="append")

        with_commit_retries(self._settings.delta_rs, f"record the erasure in {USER_ERASURES.name}", append)

    def delete_user_rows(self, user_id: str) -> dict[str, int]:
        """Rows deleted per table, every model version of the per-version tables included; a table that
        does not exist counts 0. A delete that loses to a concurrent commit (the stream appending to
        bronze) is re-run on the new snapshot."""
        predicate = f"user_id = {id_literal(user_id)}"
        return {spec.name: self._delete(spec, predicate) for spec in USER_DATA_TABLES}

    def _delete(self, spec: TableSpec, predicate: str) -> int:
        def delete() -> int:
            table = open_table(self._settings, spec)
            return 0 if table is None else int(table.delete(predicate)["num_deleted_rows"])

        return with_commit_retries(self._settings.delta_rs, f"delete a user's rows from {spec.name}", delete)

    def erasures(self) -> list[dict]:
        """Every recorded erasure (user_id, erased_at), oldest first."""
        table = open_table(self._settings, USER_ERASURES)
        if table is None:
            return []
        return query_delta(table, "SELECT user_id, erased_at FROM t ORDER BY erased_at, user_id").to_pylist()
