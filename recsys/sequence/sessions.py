"""Sessions as ordered item sequences, prepared with Spark from the events; and their time split.

A session is the events sharing a session_id (an invoice, a web session); events without one are cut into
sessions per user wherever two events are more than stream.session_gap_s apart, as the speed layer does.
Within a session items keep the order they happened in (ties on ts by Kafka offset, then event id) and each
item counts once, at its first event: a held-out last item is then never in its own input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

TIEBREAKS = ("kafka_partition", "kafka_offset", "event_id")  # after ts, in this order, those the frame has


class TooFewSessionsError(ValueError):
    """The data has too few sessions to train and hold out a model: the version goes without the signal."""


@dataclass(frozen=True)
class Session:
    user_id: str
    start_s: float  # first event, epoch seconds
    end_s: float  # last event
    items: list[str]  # distinct items, oldest first


@dataclass(frozen=True)
class SessionSplit:
    """Sessions split by time: each part holds only sessions wholly inside its window (no straddlers)."""

    train: list[Session]
    validation: list[Session]
    test: list[Session]
    validation_from_s: float  # train sessions ended before this
    test_from_s: float


def session_frame(events: DataFrame, event_types: list[str], gap_s: float, min_items: int) -> DataFrame:
    """(user_id, session, start_ts, end_ts, items): the sessions of `events`, items ordered and distinct."""
    order = [F.col("ts"), *[F.col(c) for c in TIEBREAKS if c in events.columns], F.col("item_id")]
    rows = events.where(F.col("event_type").isin(event_types) & F.col("item_id").isNotNull())
    by_user = Window.partitionBy("user_id", F.col("session_id").isNull()).orderBy(*order)
    gap = F.col("ts").cast("double") - F.lag(F.col("ts").cast("double")).over(by_user)
    starts = F.when(gap.isNull() | (gap > F.lit(gap_s)), 1).otherwise(0)
    rows = rows.withColumn("_start", starts).withColumn(
        "_n", F.sum("_start").over(by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
    rows = rows.withColumn("session", _session_key(F.col("session_id"), F.col("_n")))
    first = Window.partitionBy("user_id", "session", "item_id").orderBy(*order)
    rows = rows.withColumn("_first", F.row_number().over(first)).where(F.col("_first") == 1)
    keys = [c for c in ("ts", *TIEBREAKS) if c in events.columns]
    ordered = F.array_sort(F.collect_list(F.struct(*keys, "item_id")))
    return (rows.groupBy("user_id", "session")
            .agg(ordered.alias("_seq"), F.min("ts").alias("start_ts"), F.max("ts").alias("end_ts"))
            .select("user_id", "session", "start_ts", "end_ts",
                    F.transform("_seq", lambda x: x["item_id"]).alias("items"))
            .where(F.size("items") >= min_items))


def _session_key(session_id: Column, gap_number: Column) -> Column:
    return F.when(session_id.isNotNull(), F.concat(F.lit("id:"), session_id)).otherwise(
        F.concat(F.lit("gap:"), gap_number.cast("string")))


def collect_sessions(frame: DataFrame) -> list[Session]:
    """The sessions on the driver, oldest first (a few hundred thousand lists of ids fit easily)."""
    rows = frame.select("user_id", F.col("start_ts").cast("double").alias("s"), F.col("end_ts").cast("double")
                        .alias("e"), "items", "session").orderBy("s", "user_id", "session").collect()
    return [Session(r["user_id"], r["s"], r["e"], list(r["items"])) for r in rows]


def split_by_time(sessions: list[Session], validation_fraction: float, test_fraction: float) -> SessionSplit:
    """The newest test_fraction of sessions (by start) for test, the validation_fraction before it for
    validation, the rest for training; a session that runs across a cut is in no part, so nothing trained on
    happened after a held-out session began."""
    ordered = sorted(sessions, key=lambda s: (s.start_s, s.user_id))
    n = len(ordered)
    n_test, n_val = math.ceil(n * test_fraction), math.ceil(n * validation_fraction)
    if n - n_test - n_val < 1:
        raise TooFewSessionsError(f"{n} sessions are too few to split into train, validation and test")
    test_from = ordered[n - n_test].start_s
    val_from = ordered[n - n_test - n_val].start_s
    return SessionSplit(
        train=[s for s in ordered if s.end_s < val_from],
        validation=[s for s in ordered if val_from <= s.start_s and s.end_s < test_from],
        test=[s for s in ordered if s.start_s >= test_from],
        validation_from_s=val_from, test_from_s=test_from)
