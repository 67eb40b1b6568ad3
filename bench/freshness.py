"""Freshness: time from POST /v1/events to a changed GET recommendation, on the real stack.

Needs a published model (make demo, or make load train). Starts the streaming job and the API
(like the demo), then for each sample posts three views for a new shopper and polls the shopper's
recommendations until they differ from the popularity list every new shopper gets. Prints p50/p95/max.

    .venv/bin/python bench/freshness.py --samples 20
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid

import requests

from recsys.config import PROJECT_ROOT, get_settings
from recsys.ops.demo import RUN_DIR, get_recommendations, http_ok, item_ids, start_background, stop, wait_until
from recsys.stores.model_store import DeltaModelStore

K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--gap-s", type=float, default=1.0, help="pause between samples")
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
        qs = statistics.quantiles(latencies, n=20, method="inclusive")
        print(f"\nfreshness over {len(latencies)} samples: p50 {statistics.median(latencies):.3f}s  "
              f"p95 {qs[18]:.3f}s  max {max(latencies):.3f}s  (trigger {settings.stream.trigger_s}s)")
    finally:
        for proc in procs:
            stop(proc)


def _ids(base: str, user: str) -> list[str]:
    return item_ids(get_recommendations(base, user, K))


if __name__ == "__main__":
    main()
