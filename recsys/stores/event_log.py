"""A user's recorded events from bronze: an interface and a Delta (delta-rs) implementation.

Bronze is partitioned by event date, not by user, so a lookup scans the table (file statistics on user_id
skip what they can); delta_rs.max_history_events bounds what one call returns, not what it reads.
"""

from __future__ import annotations

from datetime import UTC
from typing import Protocol

from recsys.config import Settings
from recsys.contracts.tables import EVENT_PAYLOAD_DDL, EVENTS_BRONZE, USER_ERASURES, TableSpec
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
        predicate += self._after_erasure(user_id, {f.name for f in table.schema().fields})
        rows = query_delta(table, f"SELECT {', '.join(_PAYLOAD)} FROM t WHERE {predicate} "
                                  f"ORDER BY ts DESC, event_id DESC LIMIT {int(limit)}").to_pylist()
        for row in rows:
            if row["context"] is not None:
                row["context"] = dict(row["context"])
        return rows

    def _after_erasure(self, user_id: str, columns: set[str]) -> str:
        """A predicate keeping only events ingested after the user's latest erasure ('' when never erased):
        an event still in Kafka when they were erased can reach bronze in a commit racing the erasure."""
        erasures = open_table(self._settings, USER_ERASURES)
        if erasures is None:
            return ""
        latest = query_delta(erasures, f"SELECT MAX(erased_at) AS at FROM t WHERE user_id = {id_literal(user_id)}"
                             ).column("at")[0].as_py()
        if latest is None:
            return ""
        ingested = [c for c in ("kafka_timestamp", "ingested_at") if c in columns]
        when = f"COALESCE({', '.join(ingested)})" if len(ingested) > 1 else ingested[0]
        utc = "Timestamp(Microsecond, Some(\"UTC\"))"
        return f" AND {when} > arrow_cast('{latest.astimezone(UTC).isoformat()}', '{utc}')"
