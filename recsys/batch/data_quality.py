"""The data-quality check that runs before training: stop the DAG rather than train on broken data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys.config import Settings
from recsys.contracts.tables import EVENTS_BRONZE, EVENTS_QUARANTINE
from recsys.spark.delta import read_table

log = logging.getLogger(__name__)


class DataQualityError(RuntimeError):
    """The events up to the run date are not fit to train on; the message lists every problem."""


@dataclass(frozen=True)
class QualityReport:
    run_date: str
    events: int
    users: int
    items: int
    day_valid: int
    day_quarantined: int
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def check_events(spark: SparkSession, settings: Settings, run_date: str) -> QualityReport:
    """Volume and variety of valid events up to run_date, and the quarantined share on run_date itself."""
    cfg = settings.quality
    day = F.lit(run_date).cast("date")
    events = read_table(spark, settings, EVENTS_BRONZE).where(F.col("event_date") <= day)
    totals = events.agg(F.count("*").alias("n"), F.countDistinct("user_id").alias("users"),
                        F.countDistinct("item_id").alias("items"),
                        F.count(F.when(F.col("event_date") == day, 1)).alias("day")).first()
    quarantined = (read_table(spark, settings, EVENTS_QUARANTINE)  # the stream's (file loads have no topic)
                   .where((F.col("quarantine_date") == day) & F.col("kafka_topic").isNotNull()).count())
    problems = []
    for name, value, floor in (("events", totals["n"], cfg.min_events), ("users", totals["users"], cfg.min_users),
                               ("items", totals["items"], cfg.min_items)):
        if value < floor:
            problems.append(f"{value} {name} up to {run_date}, fewer than {floor}")
    received = totals["day"] + quarantined
    if received and quarantined / received > cfg.max_quarantine_share:
        problems.append(f"{quarantined} of {received} records on {run_date} quarantined "
                        f"({quarantined / received:.1%} > {cfg.max_quarantine_share:.1%})")
    report = QualityReport(run_date, totals["n"], totals["users"], totals["items"], totals["day"], quarantined,
                           problems)
    log.info("data quality %s: %s", "passed" if report.passed else "FAILED", report)
    return report


def require_quality(spark: SparkSession, settings: Settings, run_date: str) -> QualityReport:
    report = check_events(spark, settings, run_date)
    if not report.passed:
        raise DataQualityError("; ".join(report.problems))
    return report
