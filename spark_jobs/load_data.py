"""Backfill job: load a shop's history (generated, UCI Online Retail or MovieLens 100k) into Delta.

python -m recsys.spark.submit spark_jobs/load_data.py --source synthetic --events 200000

Prints the row counts and the events' first and last date as JSON at the end; with --progress also
`@progress` lines (recsys.progress) that `make demo` shows as a bar.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import UTC, datetime

from recsys import progress
from recsys.batch.backfill import load_shop
from recsys.config import PROJECT_ROOT, get_settings
from recsys.data.frames import ShopData
from recsys.data.movielens import fetch_movielens_100k, load_movielens_100k
from recsys.data.online_retail import DEFAULT_PATH as DEFAULT_RETAIL
from recsys.data.online_retail import load_online_retail
from recsys.data.synthetic import SyntheticShopSpec, generate_shop
from recsys.logging_setup import setup_logging
from recsys.spark.session import get_spark

log = logging.getLogger("load_data")
# Percent of the job done when each phase ends, for --progress (measured on 2 cores with the generated
# shop and the UCI data: the first table write, which creates the tables, and the events merge dominate).
PHASE_END = {"prepare": 10.0, "spark": 22.0, "items": 62.0, "users": 73.0, "events": 100.0}


def _shop(args: argparse.Namespace) -> ShopData:
    if args.source == "synthetic":
        spec = SyntheticShopSpec(n_users=args.users, n_items=args.items, n_events=args.events,
                                 days=args.days, seed=args.seed, end=datetime.now(UTC))
        return generate_shop(spec, progress=True)
    if args.source == "online-retail":
        return load_online_retail(args.path or DEFAULT_RETAIL)
    return load_movielens_100k(fetch_movielens_100k(args.path or PROJECT_ROOT / ".local" / "datasets" / "ml-100k"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["synthetic", "online-retail", "movielens"], default="synthetic")
    parser.add_argument("--path", default=None, help="data file or folder for online-retail / movielens")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--env", default=None)
    parser.add_argument("--progress", action="store_true", help="print @progress lines (recsys.progress)")
    args = parser.parse_args()
    setup_logging()
    settings = get_settings(args.env)
    started = time.time()
    say = progress.report if args.progress else lambda pct, what: None
    say(0.0, f"preparing {args.source} data")
    shop = _shop(args)
    log.info("prepared %d events in %.1fs; writing to %s", len(shop.events), time.time() - started,
             settings.path(settings.storage.delta_root))
    say(PHASE_END["prepare"], "starting Spark")
    spark = get_spark(settings, "load-data")
    previous = {"items": "spark", "users": "items", "events": "users"}
    counts = load_shop(spark, settings, shop, on_table=lambda table: say(
        PHASE_END[previous[table]], f"writing {len(getattr(shop, table)):,} {table} to Delta"))
    say(PHASE_END["events"], "loaded")
    log.info("loaded %s in %.1fs", counts, time.time() - started)
    ts = shop.events["ts"]
    span = {"first_date": str(ts.min().date()), "last_date": str(ts.max().date())} if len(ts) else {}
    print(json.dumps({**counts, **span}))


if __name__ == "__main__":
    main()
