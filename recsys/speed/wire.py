"""Kafka record bytes -> SpeedEvents on the executors, by the event contract (recsys.contracts.events).

The realtime path validates in Python with the contract's pydantic model instead of Spark SQL: its
Spark plan shrinks to "read Kafka, hand the values to Python", which removes most of the per-batch
planning time and JVM work that kept a micro-batch from finishing in well under a second. Records
the contract rejects are skipped here and counted; the bronze query quarantines them with reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from recsys.contracts.events import wire_verdict
from recsys.speed.adjustments import SpeedEvent


class WireDecoder:
    def __init__(self, min_ts: datetime, max_future_skew_s: int) -> None:
        self._min = min_ts.astimezone(UTC)
        self._skew_s = max_future_skew_s
        self.rejected = 0

    def decode(self, values: Iterable[bytes | None]) -> Iterator[SpeedEvent]:
        """Values without their Kafka coordinates (tests, tools)."""
        return self.decode_records((value, None, None, None, None) for value in values)

    def decode_records(self, records: Iterable[tuple[bytes | None, str | None, int | None, int | None,
                                                     float | None]]) -> Iterator[SpeedEvent]:
        """(value, topic, partition, offset, Kafka timestamp in epoch seconds) -> valid SpeedEvents: the
        coordinates key the stream's offset watermark, the timestamp is the ingestion time erasures compare."""
        now = datetime.now(UTC)
        for value, topic, partition, offset, ingested_at in records:
            ev, _ = wire_verdict(value, self._min, self._skew_s, now)
            if ev is None:
                self.rejected += 1
                continue
            yield SpeedEvent(ev.user_id, ev.item_id, ev.event_type, ev.ts.timestamp(), ev.session_id,
                             ev.quantity or 1, ev.event_id, topic, partition, offset, ingested_at)
