"""Speed-layer throughput and Redis memory: sustained events/s with every adjustment on, bytes per active user.

Sets up a lake of its own under .local/bench/speed: a synthetic shop's catalogue and a published
model with random rank-64 factors for its items and half its users (throughput does not depend on
factor quality). Produces the shop's events, re-timed to the last hour, to a fresh topic keyed by
user, then runs the production realtime query (availableNow, stream.max_offsets_per_trigger per
batch) and reads Spark's own progress: events/s = input rows / trigger execution time. Finally
sums Redis MEMORY USAGE over every per-user key of the users the stream touched.

    .venv/bin/python bench/speed_layer.py --events 1000000
    .venv/bin/python bench/speed_layer.py --smoke      # a few thousand events, to check the bench runs (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from datetime import UTC, datetime

import numpy as np
from confluent_kafka import Producer
from tqdm import tqdm

from recsys.config import PROJECT_ROOT, load_settings
from recsys.contracts.events import format_ts
from recsys.contracts.redis_keys import RedisKeys

OUT = PROJECT_ROOT / ".local" / "bench" / "speed"
RANK = 64
SMOKE_EVENTS, SMOKE_ITEMS, SMOKE_SAMPLE_USERS = 3_000, 300, 50  # checks the bench runs (CI)


def bench_settings(run: str):
    environ = {**os.environ,
               "RECSYS__STORAGE__DELTA_ROOT": str(OUT / "delta"),
               "RECSYS__STORAGE__CHECKPOINT_ROOT": str(OUT / f"checkpoints-{run}"),
               "RECSYS__KAFKA__EVENTS_TOPIC": f"bench-speed-{run}",
               "RECSYS__REDIS__KEY_PREFIX": f"recsys-bench-{run}:v1"}
    return load_settings(environ=environ)


def publish_random_model(spark, settings, items: list[str], users: list[str]) -> str:
    """Catalogue-sized random factors, registered and published like a trained model."""
    from recsys.batch import registry
    from recsys.contracts import model_version as mv
    from recsys.contracts.tables import ITEM_FACTORS, USER_FACTORS
    from recsys.spark.delta import conform, ensure_table
    from recsys.stores.registry_store import activate_version

    version = f"bench.{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(7)
    for spec, ids in ((ITEM_FACTORS, items), (USER_FACTORS, users)):
        ensure_table(spark, settings, spec)
        factors = (rng.normal(0, 0.1, (len(ids), RANK))).astype(np.float32).tolist()
        rows = ([(version, i, f, 1.0) for i, f in zip(ids, factors, strict=True)] if spec is ITEM_FACTORS
                else [(version, u, f) for u, f in zip(ids, factors, strict=True)])
        columns = spec.columns if spec is ITEM_FACTORS else ["model_version", "user_id", "factors"]
        (conform(spark.createDataFrame(rows, columns), spark, spec).write.format("delta").mode("append")
         .partitionBy(*spec.partition_by).save(settings.table_path(spec.name)))
    registry.record_candidate(settings, registry.RegistryEntry(version, "bench", {}, None, None,
                                                                      len(users), len(items), 0))
    registry.set_status(settings, version, mv.APPROVED)  # only a version past the gate is activated
    activate_version(settings, version)
    return version


def produce(settings, events) -> int:
    """The shop's events in time order, squeezed into the hour before now, keyed by user."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 50,
                         "batch.num.messages": 10000, "queue.buffering.max.messages": 1_000_000,
                         "compression.type": "lz4"})
    events = events.sort_values("ts")
    span = (events["ts"].max() - events["ts"].min()).total_seconds() or 1.0
    now = time.time()
    offsets = (events["ts"] - events["ts"].min()).dt.total_seconds().to_numpy() * (3000.0 / span)
    columns = ["event_id", "user_id", "item_id", "event_type", "session_id", "quantity"]
    for row, offset in tqdm(zip(events[columns].itertuples(index=False), offsets, strict=True),
                            total=len(events), desc="produce", unit="ev", mininterval=2):
        payload = dict(zip(columns, row, strict=True))
        payload["quantity"] = int(payload["quantity"])
        payload["ts"] = format_ts(datetime.fromtimestamp(now - 3600 + offset, UTC))
        while True:
            try:
                producer.produce(settings.kafka.events_topic, json.dumps(payload).encode(),
                                 key=payload["user_id"].encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0
    return len(events)


def redis_bytes_per_user(settings, users: list[str], sample: int) -> tuple[float, int, dict[str, float]]:
    import redis

    client = redis.Redis.from_url(settings.redis.url)
    keys = RedisKeys(settings.redis.key_prefix)
    rng = np.random.default_rng(3)
    chosen = rng.choice(users, size=min(sample, len(users)), replace=False).tolist()
    per_kind: dict[str, float] = {}
    totals = []
    for user in chosen:
        total = 0
        for key in keys.user_keys(user):
            used = client.memory_usage(key, samples=0) or 0
            total += used
            kind = key.rsplit(":", 1)[-1]
            per_kind[kind] = per_kind.get(kind, 0) + used
        if total:
            totals.append(total)
    client.close()
    return float(np.mean(totals)), len(totals), {k: v / max(len(totals), 1) for k, v in per_kind.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--sample-users", type=int, default=2000, help="users whose Redis keys are measured")
    parser.add_argument("--keep", action="store_true", help="leave the bench's Redis keys and topic in place")
    parser.add_argument("--smoke", action="store_true", help=f"CI size: {SMOKE_EVENTS:,} events on {SMOKE_ITEMS} items")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.items, args.sample_users = SMOKE_EVENTS, SMOKE_ITEMS, SMOKE_SAMPLE_USERS
    from recsys.batch.backfill import upsert_items
    from recsys.data.synthetic import SyntheticShopSpec, generate_shop
    from recsys.kafka.topics import ensure_topics
    from recsys.spark.session import get_spark
    from recsys.speed.stream import start_realtime_query

    run = uuid.uuid4().hex[:6]
    settings = bench_settings(run)
    shop = generate_shop(SyntheticShopSpec(n_users=max(1000, args.events // 20), n_items=args.items,
                                           n_events=args.events), progress=True)
    spark = get_spark(settings, "bench-speed")
    upsert_items(spark, settings, shop.items)
    users = sorted(shop.events["user_id"].unique())
    version = publish_random_model(spark, settings, shop.items["item_id"].tolist(), users[::2])
    ensure_topics(settings)
    n = produce(settings, shop.events)
    print(f"produced {n} events of {len(users)} users on {args.items} items; model {version} (rank {RANK})",
          flush=True)

    started = time.time()
    query = start_realtime_query(spark, settings, available_now=True)
    query.awaitTermination()
    wall = time.time() - started
    if query.exception():
        raise SystemExit(f"query failed: {query.exception()}")
    progress = [p for p in query.recentProgress if p["numInputRows"]]
    rows = sum(p["numInputRows"] for p in progress)
    busy = sum(p["durationMs"]["triggerExecution"] for p in progress) / 1000
    steady = progress[1:] or progress  # the first batch also loads the model on every Python worker
    steady_rate = sum(p["numInputRows"] for p in steady) / (sum(p["durationMs"]["triggerExecution"]
                                                                for p in steady) / 1000)
    print(f"\nrealtime query: {rows} events in {len(progress)} batches, {busy:.1f}s busy, {wall:.1f}s wall")
    print(f"throughput: {rows / busy:,.0f} events/s over all batches; {steady_rate:,.0f} events/s after the first")
    mean, measured, per_kind = redis_bytes_per_user(settings, users, args.sample_users)
    events_per_user = n / len(users)
    print(f"Redis: {mean:.0f} bytes per active user (mean over {measured} users, {events_per_user:.1f} events "
          f"each on average); by key: " + ", ".join(f"{k} {v:.0f} B" for k, v in sorted(per_kind.items())))
    spark.stop()
    if not args.keep:
        import redis

        client = redis.Redis.from_url(settings.redis.url)
        for key in client.scan_iter(f"{settings.redis.key_prefix}:*", count=10_000):
            client.unlink(key)
        from confluent_kafka.admin import AdminClient

        from recsys.kafka.topics import project_topics

        AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers}).delete_topics(project_topics(settings))


if __name__ == "__main__":
    main()
