"""Speed-layer job: Kafka -> real-time adjustments in Redis, and Delta bronze/quarantine exactly once.

python -m recsys.spark.submit spark_jobs/stream.py
"""

from __future__ import annotations

import argparse

from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.spark.session import get_spark
from recsys.speed.stream import run_streams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="configuration environment (default: RECSYS_ENV)")
    parser.add_argument("--available-now", action="store_true",
                        help="process what is in Kafka now, then stop (backfill)")
    args = parser.parse_args()
    setup_logging()
    settings = get_settings(args.env)
    run_streams(get_spark(settings, "stream"), settings, available_now=args.available_now)


if __name__ == "__main__":
    main()
