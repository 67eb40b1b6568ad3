"""Live catalogue: time from a catalogue write, and from a new item's first interactions, to every worker's answers.

Self-contained: publishes a synthetic model into a temporary Delta root and a Redis namespace of its own (the
real lake and keys are untouched), then starts --workers serving processes (each its own app and live
catalogue poller, as the server's workers are) that answer through the Flask test client. Two figures:

1. PATCH /v1/items -> seen in every worker: a shopper's top item is made unavailable, then available again;
   each worker polls the shopper's recommendations until the item is gone (back); the sample is the slowest
   worker's time.
2. A new item's first interactions -> in the similar items of the item viewed with it, then in the
   recommendations (of the item's category) of a shopper who viewed it, in every worker (two figures). The item is PUT
   first (not timed); the clock starts when the speed layer's Redis writer (what each Spark executor runs per
   micro-batch) applies the views of three shoppers whose taste fits the viewed item. The stream's trigger
   and Kafka hop are not included: see bench/trigger_latency.py for those.

    .venv/bin/python bench/catalogue.py --samples 20 --workers 2 --items 20000
    .venv/bin/python bench/catalogue.py --smoke        # what the test runs
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import redis

from recsys.config import Settings, get_settings
from recsys.demo.synthetic_model import make_model, publish_model
from recsys.speed import context
from recsys.speed.adjustments import SpeedEvent
from recsys.speed.redis_state import RedisStateWriter

VERSION = "2026-03-01.1"
TARGET_S = 5.0  # the bound for both figures
K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20, help="samples of each figure")
    parser.add_argument("--workers", type=int, default=2, help="serving processes that must all see a change")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--timeout-s", type=float, default=30.0, help="give up on a sample after this long")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: 3 samples, 300 items, 2 workers")
    args = parser.parse_args()
    if args.smoke:
        args.samples, args.workers, args.items, args.users, args.rank = 3, 2, 300, 60, 8
    root = Path(tempfile.mkdtemp(prefix="bench-catalogue-"))
    settings = _own(get_settings(), root)
    try:
        run(settings, args)
    finally:
        client = redis.Redis.from_url(settings.redis.url)
        for key in client.scan_iter(f"{settings.redis.key_prefix}:*"):
            client.delete(key)
        shutil.rmtree(root, ignore_errors=True)


def _own(settings: Settings, root: Path) -> Settings:
    """The settings with a Delta root and a Redis namespace of this run's own."""
    return settings.model_copy(update={
        "storage": settings.storage.model_copy(update={"delta_root": str(root / "delta"),
                                                       "checkpoint_root": str(root / "checkpoints")}),
        "redis": settings.redis.model_copy(update={
            "key_prefix": f"{settings.redis.key_prefix}:bench-catalogue-{uuid.uuid4().hex[:8]}"})})


def run(settings: Settings, args: argparse.Namespace) -> None:
    from api import create_app

    model = make_model(VERSION, args.users, args.items, args.rank, n_categories=20)
    publish_model(settings, model)
    writer = create_app(settings).test_client()
    spawn = mp.get_context("spawn")  # fresh interpreters, as the server's workers are separate processes
    commands = [spawn.Queue() for _ in range(args.workers)]
    replies = spawn.Queue()
    workers = [spawn.Process(target=_worker, args=(settings, commands[n], replies, args.timeout_s), daemon=True)
               for n in range(args.workers)]
    for proc in workers:
        proc.start()
    for _ in workers:
        replies.get(timeout=300)  # each worker has loaded the model
    try:
        shopper = model.user_ids[0]
        item = _ids(writer.get(f"/v1/users/{shopper}/recommendations?k={K}").json)[0]
        changes = []
        for n in range(args.samples):
            present = n % 2 == 1  # unavailable, then available again, ...
            started = time.time()
            answer = writer.patch("/v1/items", json={"item_id": item, "available": present})
            assert answer.status_code == 200, answer.json
            changes.append(_sample(commands, replies, ("availability", started, (shopper, item, present))))
            time.sleep(0.37 * (n % 3))  # vary the phase against the workers' polls
        _report("PATCH /v1/items -> change seen in every worker's answers", changes, settings)
        similar, listed, used = [], [], {shopper}
        for n in range(args.samples):
            new, source, category = f"bench-new-{n}", model.item_ids[n], model.categories[n]
            viewers = _fans(model, n, used)  # shoppers who view an item are mostly those whose taste it fits
            put = writer.put("/v1/items", json={"item_id": new, "title": f"new {source}", "category": category})
            assert put.status_code == 200, put.json
            now = time.time()
            events = [SpeedEvent(u, i, "view", now + k) for u in viewers for k, i in enumerate((source, new))]
            started = time.time()
            _apply(settings, events, n)
            similar.append(_sample(commands, replies, ("new_similar", started, (source, new))))
            listed.append(_sample(commands, replies, ("new_listed", started, (viewers[0], new, category))))
        _report("first interactions -> new item in the viewed item's similar items", similar, settings)
        _report("first interactions -> new item in its viewer's recommendations", listed, settings)
    finally:
        for queue in commands:
            queue.put(None)
        for proc in workers:
            proc.join(10)


def _fans(model, item: int, used: set[str], n: int = 3) -> list[str]:
    """The n shoppers not used yet whose batch vectors score item `item` highest."""
    order = np.argsort(-(model.user_factors @ model.item_factors[item]))
    fans = [model.user_ids[u] for u in order.tolist() if model.user_ids[u] not in used][:n]
    used.update(fans)
    return fans


def _apply(settings: Settings, events: list[SpeedEvent], batch: int) -> None:
    """What one executor does with a micro-batch: the writer over this model's fold-in context."""
    state = RedisStateWriter(settings, context.catalogue(settings), context.model_context(settings, VERSION))
    try:
        state.apply(events, "bench-catalogue", batch, 0)
    finally:
        state.close()


def _sample(commands: list, replies, command: tuple) -> float | None:
    """Send a check to every worker; the slowest worker's seconds (None: one timed out)."""
    for queue in commands:
        queue.put(command)
    times = [replies.get() for _ in commands]
    return None if any(t is None for t in times) else max(times)


def _report(what: str, samples: list[float | None], settings: Settings) -> None:
    done = sorted(s for s in samples if s is not None)
    missed = len(samples) - len(done)
    if not done:
        print(f"{what}: no sample completed ({missed} timed out)")
        return
    p50 = statistics.median(done)
    p95 = done[min(len(done) - 1, round(0.95 * (len(done) - 1)))]
    print(f"{what}: p50 {p50:.3f}s  p95 {p95:.3f}s  max {done[-1]:.3f}s  over {len(done)} samples"
          f"{f', {missed} timed out' if missed else ''}  (target p95 <= {TARGET_S:.0f}s; "
          f"serving.catalogue_poll_s {settings.serving.catalogue_poll_s}s)", flush=True)


def _worker(settings: Settings, commands, replies, timeout_s: float) -> None:
    """One serving process: answers checks against its own app until told to stop."""
    from api import create_app

    client = create_app(settings).test_client()
    client.get(f"/v1/users/{VERSION}/recommendations")  # loads the model
    replies.put("ready")
    while (command := commands.get()) is not None:
        kind, started, params = command
        check = _CHECKS[kind]
        deadline = time.time() + timeout_s
        while not check(client, *params):
            if time.time() > deadline:
                replies.put(None)
                break
            time.sleep(0.01)
        else:
            replies.put(time.time() - started)


def _ids(body: dict) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def _availability(client, shopper: str, item: str, present: bool) -> bool:
    return (item in _ids(client.get(f"/v1/users/{shopper}/recommendations?k={K}").json)) == present


def _new_similar(client, source: str, item: str) -> bool:
    return item in _ids(client.get(f"/v1/items/{source}/similar?k={K}").json)


def _new_listed(client, viewer: str, item: str, category: str) -> bool:
    """In the viewer's list of the item's category (a category page: the home page's per-category cap would
    keep a fourth item of the viewer's favourite category off it)."""
    return item in _ids(client.get(f"/v1/users/{viewer}/recommendations?k={K}&category={category}").json)


_CHECKS = {"availability": _availability, "new_similar": _new_similar, "new_listed": _new_listed}


if __name__ == "__main__":
    sys.exit(main())
