"""Delta housekeeping after publishing: compact small files and drop files no version needs any more."""

from __future__ import annotations

import logging

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from recsys.config import MaintenanceConfig, Settings
from recsys.contracts.tables import ALL_TABLES

log = logging.getLogger(__name__)


def maintain_tables(spark: SparkSession, settings: Settings) -> dict[str, str]:
    """OPTIMIZE (when configured) and VACUUM every contract table that exists; returns what was done per table."""
    cfg = settings.maintenance
    done = {}
    for spec in ALL_TABLES:
        path = settings.table_path(spec.name)
        if not DeltaTable.isDeltaTable(spark, path):
            done[spec.name] = "absent"
            continue
        table = DeltaTable.forPath(spark, path)
        steps = []
        if cfg.optimize:
            metrics = table.optimize().executeCompaction().select("metrics.numFilesRemoved").first()
            steps.append(f"optimize removed {metrics[0] if metrics else 0} files")
        steps.append(_vacuum(spark, table, path, cfg))
        done[spec.name] = ", ".join(steps)
        log.info("maintained %s: %s", spec.name, done[spec.name])
    return done


def _vacuum(spark: SparkSession, table: DeltaTable, path: str, cfg: MaintenanceConfig) -> str:
    """VACUUM with the retention set as the table property Delta reads it from.

    LITE mode finds removable files in the transaction log instead of listing the storage (seconds
    instead of minutes); when the log no longer reaches back far enough Delta refuses LITE and a
    FULL vacuum runs instead.
    """
    retention = f"interval {cfg.vacuum_retention_hours} hours"
    properties = table.detail().select("properties").first()[0] or {}
    if properties.get("delta.deletedFileRetentionDuration") != retention:
        spark.sql(f"ALTER TABLE delta.`{path}` "
                  f"SET TBLPROPERTIES ('delta.deletedFileRetentionDuration' = '{retention}')")
    mode = cfg.vacuum_mode.upper()
    try:
        spark.sql(f"VACUUM delta.`{path}` {mode}")
    except AnalysisException as exc:
        if mode != "LITE":
            raise
        log.warning("VACUUM LITE refused on %s (%s); running FULL", path, str(exc).splitlines()[0])
        spark.sql(f"VACUUM delta.`{path}` FULL")
        mode = "FULL"
    return f"vacuum {mode.lower()} {cfg.vacuum_retention_hours}h"
