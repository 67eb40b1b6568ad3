"""Delta table helpers keyed by the table contract (recsys.contracts.tables)."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from recsys.config import Settings
from recsys.contracts.tables import TableSpec


def schema_of(spark: SparkSession, spec: TableSpec) -> StructType:
    return spark.createDataFrame([], spec.ddl).schema


def ensure_table(spark: SparkSession, settings: Settings, spec: TableSpec) -> DeltaTable:
    """Create the table at its configured location if missing; return it either way.

    A table created under an older contract gets the columns added since (additive changes only),
    so an upgrade never needs a manual migration.
    """
    schema = schema_of(spark, spec)
    path = settings.table_path(spec.name)
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    if spec.partition_by:
        builder = builder.partitionedBy(*spec.partition_by)
    table = builder.execute()
    existing = {f.name for f in table.toDF().schema.fields}
    missing = [f for f in schema.fields if f.name not in existing]
    if missing:
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
        spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({columns})")
        table = DeltaTable.forPath(spark, path)
    return table


def read_table(spark: SparkSession, settings: Settings, spec: TableSpec) -> DataFrame:
    ensure_table(spark, settings, spec)
    return spark.read.format("delta").load(settings.table_path(spec.name))


def conform(df: DataFrame, spark: SparkSession, spec: TableSpec) -> DataFrame:
    """Select and cast a frame to exactly the table's columns, so writers cannot drift from the contract."""
    schema = schema_of(spark, spec)
    return df.select([df[f.name].cast(f.dataType).alias(f.name) for f in schema.fields])
