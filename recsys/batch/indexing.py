"""Dense integer ids for ALS, built distributedly (no driver-side label lists)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql.types import IntegerType, StringType, StructField, StructType


def dense_index(df: DataFrame, id_col: str, index_col: str) -> DataFrame:
    """Distinct values of id_col numbered 0..n-1 with zipWithIndex (scales with the cluster)."""
    distinct = df.select(id_col).distinct()
    schema = StructType([StructField(id_col, StringType(), False), StructField(index_col, IntegerType(), False)])
    rdd = distinct.rdd.zipWithIndex().map(lambda pair: (pair[0][0], int(pair[1])))
    return df.sparkSession.createDataFrame(rdd, schema)
