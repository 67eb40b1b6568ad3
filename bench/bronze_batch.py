"""What one bronze micro-batch costs at steady state: wall time and CPU seconds (driver, JVM, Python workers).

Writes the same shape of batch again and again through the production `write_bronze_batch`: `--events` events
and four served-recommendation records per event, as static Kafka-like rows with rising offsets, into a lake of
its own under .local/bench/bronze. A batch's cost is mostly fixed (Delta's commits, Spark's jobs, the JVM's JIT
compiler), so the first batches cost more; the figures are over the last `--measured` batches. Runs two modes, each
in a JVM of its own (a warm JVM would favour the second): with the query's offset watermarks (what the stream
does), and reading each table for duplicates on every batch.

    .venv/bin/python bench/bronze_batch.py                  # 3,000 events a batch, 20 batches, both modes
    .venv/bin/python bench/bronze_batch.py --smoke          # 2 batches of 10 events, to check the bench runs (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

from soak import cpu_seconds
from tqdm import tqdm

from recsys.config import PROJECT_ROOT, load_settings
from recsys.contracts.served import ServedRecommendation
from recsys.contracts.tables import EVENTS_BRONZE, EVENTS_QUARANTINE, RECOMMENDATIONS_SERVED
from recsys.kafka.topics import served_topic
from recsys.spark.delta import ensure_table
from recsys.spark.session import get_spark
from recsys.speed.bronze_dedupe import OffsetWatermarks
from recsys.speed.stream import write_bronze_batch

OUT = PROJECT_ROOT / ".local" / "bench" / "bronze"
KAFKA_ROWS = "value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP"
SERVED_PER_EVENT = 4  # the soak's mix: four reads, each recording a served list, per event posted
PARTITIONS = 2
MODES = {"watermarks": "with offset watermarks", "reads": "reading every table each batch"}


def kafka_rows(settings, events: int, first_offset: int) -> list[tuple]:
    """`events` events and SERVED_PER_EVENT served records per event, on PARTITIONS partitions of each topic."""
    now = datetime.now(UTC)
    served = served_topic(settings)
    rows = []
    for n in range(first_offset, first_offset + events):
        event = {"event_id": f"e{n}", "user_id": f"u{n % 5000}", "item_id": f"i{n % 900}", "event_type": "view",
                 "ts": now.isoformat()}
        rows.append((json.dumps(event).encode(), settings.kafka.events_topic, n % PARTITIONS, n, now))
        record = ServedRecommendation(user_id=f"u{n % 5000}", experiment="bench", variant="control",
                                      model_version="bench", item_ids=[f"i{k}" for k in range(10)])
        rows += [(record.to_json().encode(), served, j % PARTITIONS, SERVED_PER_EVENT * n + j, now)
                 for j in range(SERVED_PER_EVENT)]
    return rows


def run(spark, settings, events: int, batches: int, watermarks: bool) -> list[tuple[float, float]]:
    """(wall s, CPU s) per batch."""
    for spec in (EVENTS_BRONZE, EVENTS_QUARANTINE, RECOMMENDATIONS_SERVED):
        ensure_table(spark, settings, spec)
    marks = OffsetWatermarks() if watermarks else None
    app_id = f"bench-bronze-{uuid.uuid4().hex[:8]}"
    costs = []
    me = {"bench": os.getpid()}  # this process with its children: the JVM and Spark's Python workers
    for batch_id in tqdm(range(batches), desc="watermarks" if watermarks else "reads every batch", unit="batch"):
        batch = spark.createDataFrame(kafka_rows(settings, events, batch_id * events), KAFKA_ROWS).persist()
        batch.count()  # built before the clock starts: the stream's batch comes from Kafka
        cpu, wall = cpu_seconds(me, alone=())["bench"], time.perf_counter()
        counts = write_bronze_batch(batch, batch_id, settings, app_id, marks)
        costs.append((time.perf_counter() - wall, cpu_seconds(me, alone=())["bench"] - cpu))
        batch.unpersist()
        if counts["valid"] != events or counts["served"] != SERVED_PER_EVENT * events:
            raise SystemExit(f"batch {batch_id} wrote {counts}, expected {events} events")
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3_000, help="events per batch (the soak: 30 s at 100/s)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--measured", type=int, default=8, help="last batches the figures are over")
    parser.add_argument("--smoke", action="store_true", help="CI size: 2 batches of 10 events")
    parser.add_argument("--mode", choices=MODES, help="one mode in this process (default: each in its own)")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.batches, args.measured = 10, 2, 1
    if args.mode is None:
        print(f"bronze batch: {args.events} events and {SERVED_PER_EVENT * args.events} served records a batch, "
              f"{args.batches} batches, figures over the last {args.measured}", flush=True)
        for mode in MODES:
            subprocess.run([sys.executable, __file__, "--mode", mode, "--events", str(args.events),
                            "--batches", str(args.batches), "--measured", str(args.measured)], check=True)
        return
    base = load_settings()
    spark = get_spark(base, "bench-bronze")
    root = OUT / uuid.uuid4().hex[:8]
    settings = base.model_copy(update={"storage": base.storage.model_copy(update={
        "delta_root": str(root / "delta"), "checkpoint_root": str(root / "checkpoints")})})
    try:
        costs = run(spark, settings, args.events, args.batches, args.mode == "watermarks")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        spark.stop()
    tail = costs[-args.measured:]
    print(f"{MODES[args.mode]:>32}: first batch {costs[0][0]:.1f} s wall, {costs[0][1]:.1f} CPU-s; steady state "
          f"median {statistics.median(w for w, _ in tail):.2f} s wall, "
          f"{statistics.median(c for _, c in tail):.2f} CPU-s per batch (master {spark.sparkContext.master})")


if __name__ == "__main__":
    main()
