"""Experiment report: CTR and conversion per A/B variant, from recommendations_served and events_bronze.

python -m recsys.spark.submit spark_jobs/experiment_report.py --since 2026-11-01 [--experiment merge-weights-1]
Prints one JSON object per (experiment, variant).
"""

from __future__ import annotations

import argparse
import json
from datetime import date

from recsys.batch.variant_outcomes import variant_metrics
from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.spark.session import get_spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", type=date.fromisoformat, default=None,
                        help="only lists served on or after this UTC date (YYYY-MM-DD)")
    parser.add_argument("--experiment", default=None, help="only this experiment (default: every one)")
    parser.add_argument("--env", default=None, help="configuration environment (default: RECSYS_ENV)")
    args = parser.parse_args()
    setup_logging()
    settings = get_settings(args.env)
    report = variant_metrics(get_spark(settings, "experiment-report"), settings, args.since, args.experiment)
    for row in report.collect():
        print(json.dumps(row.asDict()))


if __name__ == "__main__":
    main()
