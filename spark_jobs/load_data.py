"""Backfill job: load a shop's history (its own files, generated, UCI Online Retail or MovieLens 100k) into Delta.

python -m recsys.spark.submit spark_jobs/load_data.py --source synthetic --events 200000
python -m recsys.spark.submit spark_jobs/load_data.py --source files --events sales.csv \
    [--items items.csv] [--users users.csv] --mapping conf/mappings/my-shop.yaml

Prints the row counts, the events' first and last date and the rejects per reason as JSON at the end;
with --progress also `@progress` lines (recsys.progress) that `make demo` shows as a bar. Rejected
rows of files are quarantined in events_quarantine with their reason (docs/bring-your-own-data.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from recsys import progress
from recsys.batch.backfill import load_shop, quarantine_rejects
from recsys.config import PROJECT_ROOT, Settings, get_settings
from recsys.data.file_loader import FileSources, LoadResult, TimeBounds, load_files
from recsys.data.mapping import read_mapping
from recsys.data.movielens import fetch_movielens_100k, load_movielens_100k
from recsys.data.online_retail import DEFAULT_PATH as DEFAULT_RETAIL
from recsys.data.online_retail import load_online_retail_files
from recsys.data.synthetic import SyntheticShopSpec, generate_shop
from recsys.logging_setup import setup_logging
from recsys.spark.session import get_spark

log = logging.getLogger("load_data")
# Percent of the job done when each phase ends, for --progress (measured on 2 cores with the generated
# shop and the UCI data: the first table write, which creates the tables, and the events merge dominate).
PHASE_END = {"prepare": 10.0, "spark": 22.0, "items": 62.0, "users": 73.0, "events": 95.0, "quarantine": 100.0}
READ_SHARE = 0.8  # of the prepare phase, for reading files (the rest maps their columns)
SYNTHETIC_DEFAULTS = {"users": 2000, "items": 500, "events": 100_000}


def _prepare(args: argparse.Namespace, settings: Settings, say) -> LoadResult:
    bounds = TimeBounds(settings.events.min_ts, settings.events.max_future_skew_s)
    if args.source == "files":
        if not args.events or not args.mapping:
            raise SystemExit("--source files needs --events FILE and --mapping FILE (see docs/bring-your-own-data.md)")
        sources = FileSources(Path(args.events), args.items and Path(args.items), args.users and Path(args.users),
                              args.format)

        def reading(table: str, fraction: float | None, rows: int) -> None:
            share = "" if fraction is None else f" ({fraction:.0%})"
            log.info("read %s rows of the %s file%s", f"{rows:,}", table, share)
            say(PHASE_END["prepare"] * READ_SHARE * (fraction or 0.0), f"reading {table}: {rows:,} rows{share}")

        return load_files(sources, read_mapping(args.mapping), bounds, settings.loader.chunk_rows, reading)
    if args.source == "online-retail":
        return load_online_retail_files(args.path or DEFAULT_RETAIL, bounds)
    if args.source == "synthetic":
        n = {name: int(getattr(args, name) or default) for name, default in SYNTHETIC_DEFAULTS.items()}
        spec = SyntheticShopSpec(n_users=n["users"], n_items=n["items"], n_events=n["events"],
                                 days=args.days, seed=args.seed, end=datetime.now(UTC))
        return LoadResult(generate_shop(spec, progress=True))
    return LoadResult(load_movielens_100k(fetch_movielens_100k(
        args.path or PROJECT_ROOT / ".local" / "datasets" / "ml-100k")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["files", "synthetic", "online-retail", "movielens"],
                        default="synthetic")
    parser.add_argument("--path", default=None, help="data file or folder for online-retail / movielens")
    parser.add_argument("--events", default=None, help="files: the events file; synthetic: how many (100000)")
    parser.add_argument("--items", default=None, help="files: an items file (optional); synthetic: how many (500)")
    parser.add_argument("--users", default=None, help="files: a users file (optional); synthetic: how many (2000)")
    parser.add_argument("--mapping", default=None,
                        help="files: the column mapping, a YAML file or a name in conf/mappings/")
    parser.add_argument("--format", default=None, choices=["csv", "tsv", "parquet", "jsonl"],
                        help="files: their format when the file names do not tell")
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
    loaded = _prepare(args, settings, say)
    shop = loaded.shop
    log.info("prepared %d events (%d rejected) in %.1fs; writing to %s", len(shop.events), len(loaded.rejects),
             time.time() - started, settings.path(settings.storage.delta_root))
    say(PHASE_END["prepare"], "starting Spark")
    spark = get_spark(settings, "load-data")
    previous = {"items": "spark", "users": "items", "events": "users"}
    counts = load_shop(spark, settings, shop, on_table=lambda table: say(
        PHASE_END[previous[table]], f"writing {len(getattr(shop, table)):,} {table} to Delta"))
    if len(loaded.rejects):
        say(PHASE_END["events"], f"quarantining {len(loaded.rejects):,} rejected rows")
        quarantine_rejects(spark, settings, loaded.rejects)
    say(PHASE_END["quarantine"], "loaded")
    log.info("loaded %s in %.1fs", counts, time.time() - started)
    ts = shop.events["ts"]
    span = {"first_date": str(ts.min().date()), "last_date": str(ts.max().date())} if len(ts) else {}
    summary = loaded.summary()
    print(json.dumps({**counts, **span, "rejected": summary["rejected"], "reasons": summary["reasons"]}))


if __name__ == "__main__":
    main()
