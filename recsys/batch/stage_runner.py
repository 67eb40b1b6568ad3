"""Run one batch stage by name (spark_jobs/batch.py, one Airflow task each).

Each stage imports only what it needs, and the stages that only read and update registry rows (gate,
publish) start no SparkContext: a short stage does not pay seconds of JVM and library start-up for work
it does not do.
"""

from __future__ import annotations

from dataclasses import asdict

from recsys.config import Settings

DAG_STAGES = ("check", "train", "sequence", "evaluate", "gate", "publish", "maintain")  # an Airflow task each, in order
STAGES = (*DAG_STAGES, "all")  # all: check..publish in one process (`make train`)
WITHOUT_SPARK = ("gate", "publish")  # registry rows and a report only: no SparkContext to start


def run_stage(stage: str, settings: Settings, run_date: str, force: bool) -> object:
    """One stage's result; each imports only what it needs, so a short stage does not pay for the rest."""
    if stage in WITHOUT_SPARK:
        from recsys.batch import release  # imports nothing of Spark or training

        return asdict(getattr(release, f"{stage}_stage")(settings, run_date))
    from recsys.spark.session import get_spark

    spark = get_spark(settings, f"batch-{stage}")
    if stage == "check":
        from recsys.batch.data_quality import require_quality

        return asdict(require_quality(spark, settings, run_date))
    if stage == "maintain":
        from recsys.batch.maintenance import maintain_tables

        return maintain_tables(spark, settings)
    if stage == "sequence":
        from recsys.sequence.stage import sequence_stage

        return asdict(sequence_stage(spark, settings, run_date))
    from recsys.batch import stages

    if stage == "all":
        return [asdict(r) for r in stages.run_all(spark, settings, run_date, force)]
    if stage == "train":
        return asdict(stages.train_stage(spark, settings, run_date, force))
    return asdict(stages.evaluate_stage(spark, settings, run_date))
