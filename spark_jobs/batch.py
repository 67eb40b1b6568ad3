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
from datetime import UTC, datetime

from recsys.batch.data_quality import DataQualityError
from recsys.batch.stage_runner import STAGES, run_stage
from recsys.config import get_settings
from recsys.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--run-date", default=datetime.now(UTC).date().isoformat(),
                        help="train on events up to this date (YYYY-MM-DD); Airflow passes {{ ds }}")
    parser.add_argument("--force", action="store_true", help="retrain a run date that was already decided")
    parser.add_argument("--env", default=None, help="configuration environment (default: RECSYS_ENV)")
    args = parser.parse_args()
    setup_logging()
    try:
        out = run_stage(args.stage, get_settings(args.env), args.run_date, args.force)
    except (DataQualityError, LookupError, ValueError) as exc:
        print(f"{args.stage} failed: {exc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
