"""Rollback: make a registered model version current again (one atomic registry commit).

python -m recsys.spark.submit spark_jobs/activate_model.py --version 2026-11-27.1
"""

from __future__ import annotations

import argparse

from recsys.batch.registry import activate, current_version
from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.spark.session import get_spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="a model_version from the model_registry table")
    parser.add_argument("--env", default=None)
    args = parser.parse_args()
    setup_logging()
    settings = get_settings(args.env)
    spark = get_spark(settings, "activate-model")
    before = current_version(spark, settings)
    activate(spark, settings, args.version)
    print(f"current model: {before} -> {current_version(spark, settings)}")


if __name__ == "__main__":
    main()
