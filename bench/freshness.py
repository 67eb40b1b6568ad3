"""Freshness: time from POST /v1/events to a changed GET recommendation, on the real stack.

Needs a published model (make demo, or make load train). Starts the streaming job and the API
(like the demo) and, in the background, produces --background-rate synthetic events per second
straight to Kafka (other shoppers' steady load). For each sample it posts three views for a new
shopper and polls the shopper's recommendations until they differ from the popularity list every
new shopper gets. Prints p50/p95/p99/max.

    .venv/bin/python bench/freshness.py --samples 100 --background-rate 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid

import requests
from confluent_kafka import Producer

from recsys.config import PROJECT_ROOT, get_settings
from recsys.demo.probes import get_recommendations, http_ok, item_ids
from recsys.demo.processes import RUN_DIR, start_background, stop, wait_until
from recsys.stores.model_store import DeltaModelStore

K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--gap-s", type=float, default=0.5, help="pause between samples")
    parser.add_argument("--background-rate", type=float, default=1000.0, help="other shoppers' events per second")
    args = parser.parse_args()
    settings = get_settings()
    store = DeltaModelStore(settings)
    version = store.current_version()
    if version is None:
        sys.exit("no published model: run `make demo` or `make load train` first")
    items = store.load(version).item_ids
    base = f"http://{settings.serving.host}:{settings.serving.port}"
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    try:
        procs.append(start_background("bench-stream", [sys.executable, "-m", "recsys.spark.submit",
                                                       "spark_jobs/stream.py"]))
        procs.append(start_background("bench-api", [str(PROJECT_ROOT / ".venv" / "bin" / "gunicorn"), "--config",
                                                    "api/gunicorn_conf.py", "api.wsgi:app"]))
        wait_until(lambda: http_ok(f"{base}/healthz"), 60, "API", procs)
        stop_load = threading.Event()
        threading.Thread(target=_background_load, args=(settings, items, args.background_rate, stop_load),
                         daemon=True).start()
        latencies = []
        for n in range(args.samples + 1):
            user = f"bench-{uuid.uuid4().hex[:10]}"
            before = _ids(base, user)
            views = [{"user_id": user, "item_id": items[(n * 7 + j) % len(items)], "event_type": "view"}
                     for j in range(3)]
            posted = time.monotonic()
            requests.post(f"{base}/v1/events", json=views, timeout=10).raise_for_status()
            wait_until(lambda u=user, b=before: _ids(base, u) != b, 300, "changed recommendations", procs)
            if n:  # the first sample includes the stream's start-up
                latencies.append(time.monotonic() - posted)
                print(f"sample {n:3d}: {latencies[-1]:.3f}s", flush=True)
            time.sleep(args.gap_s)
        stop_load.set()
        qs = statistics.quantiles(latencies, n=100, method="inclusive")
        print(f"\nfreshness over {len(latencies)} samples at {args.background_rate:.0f} background events/s: "
              f"p50 {qs[49]:.3f}s  p95 {qs[94]:.3f}s  p99 {qs[98]:.3f}s  max {max(latencies):.3f}s  "
              f"(realtime trigger {settings.stream.realtime_trigger_s}s)")
    finally:
        for proc in procs:
            stop(proc)


def _background_load(settings, items: list[str], rate: float, stop_load: threading.Event) -> None:
    """Other shoppers' events at a steady rate, produced straight to Kafka in 10 ms slices."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 5})
    per_slice, n = max(1, round(rate / 100)), 0
    while not stop_load.is_set():
        tick = time.monotonic()
        for _ in range(per_slice):
            user = f"load-{n % 5000}"
            producer.produce(settings.kafka.events_topic, key=user.encode(), value=json.dumps(
                {"user_id": user, "item_id": items[(n * 31) % len(items)], "event_type": "view",
                 "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode())
            n += 1
        producer.poll(0)
        time.sleep(max(0.0, 0.01 - (time.monotonic() - tick)))
    producer.flush(10)


def _ids(base: str, user: str) -> list[str]:
    return item_ids(get_recommendations(base, user, K))


if __name__ == "__main__":
    main()
