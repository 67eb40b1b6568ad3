"""Batch job: train ALS on the Delta events and publish a model version.

python -m recsys.spark.submit spark_jobs/train.py --run-date 2026-11-28
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime

from recsys.batch.training import train_and_publish
from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.spark.session import get_spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-date", default=datetime.now(UTC).date().isoformat(),
                        help="train on events up to this date (YYYY-MM-DD); Airflow passes {{ ds }}")
    parser.add_argument("--env", default=None, help="configuration environment (default: RECSYS_ENV)")
    args = parser.parse_args()
    setup_logging()
    settings = get_settings(args.env)
    result = train_and_publish(get_spark(settings, "train"), settings, args.run_date)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
