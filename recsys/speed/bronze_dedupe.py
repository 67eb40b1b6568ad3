"""Which records of a bronze micro-batch a table already holds, reading the table only when it might hold some.

Delta's txnAppId/txnVersion keep a replayed batch of the same query from committing twice, but a lost checkpoint
is a new query id that starts again from stream.starting_offsets, so each table is also deduplicated on the
Kafka coordinates of its rows. Reading a table for that costs a Delta snapshot and a filtered scan per table
and batch: seconds of CPU per batch on a small machine, whatever the batch's size. The bronze query is each
table's only writer, so once it knows a table's highest offset per (topic, partition) - one aggregate when the
query starts - a batch whose offsets all lie past it cannot repeat a record of the table, and only batches that
overlap it (a new checkpoint, a replay) read the table.
"""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

TopicPartition = tuple[str, int]
OffsetBounds = dict[TopicPartition, tuple[int, int]]  # lowest and highest offset of the batch


def offset_bounds(records: DataFrame) -> OffsetBounds:
    """Lowest and highest offset per (topic, partition) of a batch of Kafka records (one small job)."""
    rows = records.groupBy("topic", "partition").agg(F.min("offset").alias("lo"), F.max("offset").alias("hi"))
    return {(r["topic"], r["partition"]): (r["lo"], r["hi"]) for r in rows.collect()}


def not_yet_written(df: DataFrame, path: str, keys: tuple[str, ...]) -> DataFrame:
    """Rows of `df` whose Kafka coordinates `keys` the table at `path` does not hold yet (a left anti join).

    Only files whose offset statistics overlap the batch's range are read.
    """
    if not DeltaTable.isDeltaTable(df.sparkSession, path):
        return df
    bounds = df.agg(F.min("kafka_offset").alias("lo"), F.max("kafka_offset").alias("hi")).first()
    if bounds["lo"] is None:
        return df
    written = (df.sparkSession.read.format("delta").load(path)
               .where(F.col("kafka_offset").between(bounds["lo"], bounds["hi"])).select(*keys).distinct())
    return df.join(written, list(keys), "left_anti")


class OffsetWatermarks:
    """The highest Kafka offset per (topic, partition) each table holds, for one run of the bronze query.

    Read from a table on its first use, then raised by every batch the query commits (`advance`); a batch's
    highest offsets may exceed what a table got (records quarantined or of erased users), which only makes a
    later replay of them read the table: never too low, so never a skipped duplicate.
    """

    def __init__(self) -> None:
        self._highest: dict[str, dict[TopicPartition, int]] = {}

    def _load(self, spark: SparkSession, path: str, topic: str | None) -> dict[TopicPartition, int]:
        if path not in self._highest:
            highest: dict[TopicPartition, int] = {}
            if DeltaTable.isDeltaTable(spark, path):
                topic_column = F.col("kafka_topic") if topic is None else F.lit(topic)
                rows = (spark.read.format("delta").load(path)
                        .groupBy(topic_column.alias("topic"), F.col("kafka_partition").alias("partition"))
                        .agg(F.max("kafka_offset").alias("hi")).collect())
                highest = {(r["topic"], r["partition"]): r["hi"] for r in rows}
            self._highest[path] = highest
        return self._highest[path]

    def may_hold(self, spark: SparkSession, path: str, bounds: OffsetBounds, topic: str | None = None) -> bool:
        """Whether the table may already hold a record of the batch. topic: the one topic a table without a
        kafka_topic column is fed from."""
        highest = self._load(spark, path, topic)
        return any(lo <= highest.get(partition, -1) for partition, (lo, _) in bounds.items())

    def advance(self, bounds: OffsetBounds) -> None:
        """Record a committed batch: every table now holds (or deliberately lacks) its records."""
        for highest in self._highest.values():
            for partition, (_, hi) in bounds.items():
                highest[partition] = max(highest.get(partition, -1), hi)
