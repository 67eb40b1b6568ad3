"""Batch sequence job: train, evaluate and gate the run date's next-item model (between train and evaluate).

python -m recsys.spark.submit spark_jobs/sequence.py --run-date 2026-11-28
Exit status 1 when the run date has no trained version or too few sessions.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime

from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.sequence.stage import sequence_stage
from recsys.spark.session import get_spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-date", default=datetime.now(UTC).date().isoformat(),
                        help="the run date whose version gets the model (YYYY-MM-DD); Airflow passes {{ ds }}")
    parser.add_argument("--env", default=None, help="configuration environment (default: RECSYS_ENV)")
    args = parser.parse_args()
    setup_logging()
    settings = get_settings(args.env)
    spark = get_spark(settings, "batch-sequence")
    try:
        out = asdict(sequence_stage(spark, settings, args.run_date))
    except (LookupError, ValueError) as exc:
        print(f"sequence failed: {exc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
