"""A user's recorded events from bronze: an interface and a Delta (delta-rs) implementation.

Bronze is partitioned by event date, not by user, so a lookup scans the table (file statistics on user_id
skip what they can); delta_rs.max_history_events bounds what one call returns, not what it reads.
"""

from __future__ import annotations

from typing import Protocol

from recsys.config import Settings
from recsys.contracts.tables import EVENT_PAYLOAD_DDL, EVENTS_BRONZE, TableSpec
from recsys.stores.delta_rs import id_literal, open_table
from recsys.stores.model_store import query_delta

_PAYLOAD = TableSpec("payload", EVENT_PAYLOAD_DDL).columns


class EventLog(Protocol):
    def latest_events(self, user_id: str, limit: int) -> list[dict]: ...


class DeltaEventLog:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def latest_events(self, user_id: str, limit: int) -> list[dict]:
        """The user's newest `limit` events, newest first, as event payloads (ts a UTC datetime,
        context a dict); [] before bronze exists. Raises ValueError for a limit outside
        1..delta_rs.max_history_events or an id that breaks the id rule."""
        most = self._settings.delta_rs.max_history_events
        if not 1 <= limit <= most:
            raise ValueError(f"limit {limit} outside 1..{most} (delta_rs.max_history_events)")
        predicate = f"user_id = {id_literal(user_id)}"
        table = open_table(self._settings, EVENTS_BRONZE)
        if table is None:
            return []
        rows = query_delta(table, f"SELECT {', '.join(_PAYLOAD)} FROM t WHERE {predicate} "
                                  f"ORDER BY ts DESC, event_id DESC LIMIT {int(limit)}").to_pylist()
        for row in rows:
            if row["context"] is not None:
                row["context"] = dict(row["context"])
        return rows
