"""Delta housekeeping after publishing: compact small files and drop files no version needs any more."""

from __future__ import annotations

import logging

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from recsys.config import Settings
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
        table.vacuum(float(cfg.vacuum_retention_hours))
        steps.append(f"vacuum {cfg.vacuum_retention_hours}h")
        done[spec.name] = ", ".join(steps)
        log.info("maintained %s: %s", spec.name, done[spec.name])
    return done
