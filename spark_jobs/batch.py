"""Batch layer job: one stage (or all) of the model pipeline for a run date.

python -m recsys.spark.submit spark_jobs/batch.py all --run-date 2026-11-28
Stages: check (data quality), train (tune + fit + outputs), sequence (the next-item model, recsys/sequence/),
evaluate, gate (+ HTML report), publish, maintain (Delta OPTIMIZE/VACUUM), all (check..publish).
Exit status 1 when a check or stage fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime

from recsys.batch import stages
from recsys.batch.data_quality import DataQualityError, require_quality
from recsys.batch.maintenance import maintain_tables
from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.sequence.stage import sequence_stage
from recsys.spark.session import get_spark

STAGES = ("check", "train", "sequence", "evaluate", "gate", "publish", "maintain", "all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--run-date", default=datetime.now(UTC).date().isoformat(),
                        help="train on events up to this date (YYYY-MM-DD); Airflow passes {{ ds }}")
    parser.add_argument("--force", action="store_true", help="retrain a run date that was already decided")
    parser.add_argument("--env", default=None, help="configuration environment (default: RECSYS_ENV)")
    args = parser.parse_args()
    setup_logging()
    settings = get_settings(args.env)
    spark = get_spark(settings, f"batch-{args.stage}")
    try:
        if args.stage == "check":
            out = asdict(require_quality(spark, settings, args.run_date))
        elif args.stage == "maintain":
            out = maintain_tables(spark, settings)
        elif args.stage == "all":
            out = [asdict(r) for r in stages.run_all(spark, settings, args.run_date, args.force)]
        elif args.stage == "train":
            out = asdict(stages.train_stage(spark, settings, args.run_date, args.force))
        elif args.stage == "sequence":
            out = asdict(sequence_stage(spark, settings, args.run_date))
        else:
            out = asdict(getattr(stages, f"{args.stage}_stage")(spark, settings, args.run_date))
    except (DataQualityError, LookupError, ValueError) as exc:
        print(f"{args.stage} failed: {exc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
