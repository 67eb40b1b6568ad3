"""Speed-layer job: Kafka -> Delta bronze/quarantine exactly once, and real-time state in Redis.

python -m recsys.spark.submit spark_jobs/stream.py
"""

from __future__ import annotations

import argparse

from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.spark.session import get_spark
from recsys.speed.stream import start_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="configuration environment (default: RECSYS_ENV)")
    parser.add_argument("--available-now", action="store_true",
                        help="process what is in Kafka now, then stop (backfill)")
    args = parser.parse_args()
    setup_logging()
    settings = get_settings(args.env)
    query = start_stream(get_spark(settings, "stream"), settings, available_now=args.available_now)
    query.awaitTermination()


if __name__ == "__main__":
    main()
