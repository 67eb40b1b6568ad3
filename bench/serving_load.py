"""Serving latency and throughput: wrk on loopback against gunicorn, 100k items x 64 factors, real-time state.

Writes a synthetic published model (recsys.demo.synthetic_model) into its own Delta root, gives
--active-users shoppers real-time state by running their events through the speed layer's own Redis
writer (recent items, folded-in vectors, interests, co-views, purchases, trending), starts gunicorn as
`make serve` does, and runs wrk (Debian package `wrk`) for each scenario and connection count: random
users, the full merge. Prints p50/p90/p99 and requests/s per run, then where the time goes inside one
request (cProfile of the library call, no HTTP).

    .venv/bin/python bench/serving_load.py --items 100000 --rank 64 --seconds 20
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import redis
import requests

from recsys.config import PROJECT_ROOT, load_settings
from recsys.contracts.redis_keys import RedisKeys
from recsys.demo.synthetic_model import make_model, publish_model
from recsys.speed import context
from recsys.speed.adjustments import SpeedEvent
from recsys.speed.redis_state import RedisStateWriter
from recsys.speed.trending import rebuild_trending

BENCH_ROOT = PROJECT_ROOT / ".local" / "bench" / "serving"
LUA = """
math.randomseed(os.time())
local users, categories, scenario = {users}, {categories}, "{scenario}"
request = function()
  local u = "u" .. math.random(0, users - 1)
  if scenario == "filtered" then
    return wrk.format("GET", "/v1/users/" .. u .. "/recommendations?k=10&explain=true&category=c"
                      .. math.random(0, categories - 1))
  elseif scenario == "similar" then
    return wrk.format("GET", "/v1/items/i" .. math.random(0, {items} - 1) .. "/similar?k=10")
  end
  return wrk.format("GET", "/v1/users/" .. u .. "/recommendations?k=10")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.3f %.3f %.3f %.3f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.duration, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def realtime_state(settings, version: str, active_users: int, events_per_user: int, n_items: int,
                   categories: list[str], seed: int = 11) -> float:
    """Shoppers' events through the speed layer's writer: the state serving reads, written as in production."""
    rng = np.random.default_rng(seed)
    by_category: dict[str, list[int]] = {}
    for index, category in enumerate(categories):
        by_category.setdefault(category, []).append(index)
    names = sorted(by_category)
    writer = RedisStateWriter(settings, context.catalogue(settings), context.model_context(settings, version))
    now, started, events = time.time(), time.time(), []
    for user in range(active_users):
        liked = by_category[names[rng.integers(len(names))]]
        for n in range(events_per_user):
            item = liked[rng.integers(len(liked))] if rng.random() < 0.7 else int(rng.integers(n_items))
            kind = "purchase" if n == events_per_user - 1 and rng.random() < 0.3 else "view"
            events.append(SpeedEvent(f"u{user}", f"i{item}", kind, now - 600 + n * 20 + rng.random()))
    events.sort(key=lambda e: e.ts)
    try:
        writer.apply(events, f"bench-{uuid.uuid4().hex[:6]}", 0, 0)
    finally:
        writer.close()
    rebuild_trending(redis.Redis.from_url(settings.redis.url), RedisKeys(settings.redis.key_prefix),
                     settings.stream, time.time())
    return time.time() - started


def run_wrk(base: str, scenario: str, connections: int, seconds: int, users: int, n_items: int,
            n_categories: int) -> dict:
    script = Path(tempfile.mkdtemp()) / "bench.lua"
    script.write_text(LUA.replace("{users}", str(users)).replace("{categories}", str(n_categories))
                      .replace("{items}", str(n_items)).replace("{scenario}", scenario))
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "-s", str(script), base],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    requests_done, errors, micros, p50, p90, p99, worst = line.split()[1:]
    return {"scenario": scenario, "connections": connections, "requests": int(requests_done), "errors": int(errors),
            "rps": round(int(requests_done) / (int(micros) / 1e6), 1), "p50_ms": float(p50),
            "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(worst)}


def where_time_goes(environ: dict, users: int, calls: int = 2000) -> str:
    """cProfile of the recommendation library call itself, in this process (what one worker does)."""
    os.environ.update(environ)
    from api.services import build_services
    from recsys.serving.recommender import RecommendationQuery

    settings = load_settings(environ["RECSYS_ENV"], environ=environ)
    recommender = build_services(settings).recommender
    rng = np.random.default_rng(3)
    recommender.recommend("u0", RecommendationQuery(k=10))  # the model load is not part of a request
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        recommender.recommend(f"u{rng.integers(users)}", RecommendationQuery(k=10, explain=True))
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(15)
    return text.getvalue()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=30).status_code == 200
    except requests.ConnectionError:  # not listening yet
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--categories", type=int, default=40)
    parser.add_argument("--active-users", type=int, default=20_000, help="users with real-time state")
    parser.add_argument("--events-per-user", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=20, help="per wrk run")
    parser.add_argument("--connections", default="4,16")
    parser.add_argument("--scenarios", default="full,filtered,similar")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (Debian) — `make bench-serving` does it")
    tag = uuid.uuid4().hex[:6]
    environ = {**os.environ, "RECSYS_ENV": os.environ.get("RECSYS_ENV", "local"),
               "RECSYS__STORAGE__DELTA_ROOT": str(BENCH_ROOT / tag / "delta"),
               "RECSYS__REDIS__KEY_PREFIX": f"bench-serving-{tag}"}
    settings = load_settings(environ["RECSYS_ENV"], environ=environ)
    started = time.time()
    model = make_model(f"bench.{tag}", args.users, args.items, args.rank, args.categories)
    version = publish_model(settings, model)
    print(f"model {version}: {args.items:,} items x {args.rank} factors, {args.users:,} users, written in "
          f"{time.time() - started:.1f}s", flush=True)
    seconds = realtime_state(settings, version, args.active_users, args.events_per_user, args.items,
                             model.categories)
    print(f"real-time state for {args.active_users:,} users ({args.events_per_user} events each) in {seconds:.1f}s",
          flush=True)
    base = f"http://{settings.serving.host}:{settings.serving.port}"
    log = (BENCH_ROOT / tag / "gunicorn.log").open("w")
    api = subprocess.Popen([str(PROJECT_ROOT / ".venv" / "bin" / "gunicorn"), "--config", "api/gunicorn_conf.py",
                            "--access-logfile", "/dev/null", "api.wsgi:app"],
                           cwd=PROJECT_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
    results = []
    try:
        deadline = time.time() + 120
        while not _answers(f"{base}/v1/users/u0/recommendations"):
            if api.poll() is not None or time.time() > deadline:
                sys.exit(f"the API did not start; see {log.name}")
            time.sleep(1)
        for scenario in args.scenarios.split(","):
            for connections in (int(c) for c in args.connections.split(",")):
                result = run_wrk(base, scenario, connections, args.seconds, args.active_users, args.items,
                                 args.categories)
                results.append(result)
                print(json.dumps(result), flush=True)
    finally:
        api.terminate()
        api.wait(30)
        redis.Redis.from_url(settings.redis.url).delete(
            *redis.Redis.from_url(settings.redis.url).keys(f"{settings.redis.key_prefix}:*") or ["-"])
    print(f"\n{'scenario':<10} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for r in results:
        print(f"{r['scenario']:<10} {r['connections']:>5} {r['rps']:>8.0f} {r['p50_ms']:>7.2f} {r['p90_ms']:>7.2f} "
              f"{r['p99_ms']:>7.2f} {r['errors']:>6}")
    print("\nwhere the time goes in one recommendation (cProfile, library call, 2,000 calls):")
    print(where_time_goes(environ, args.active_users))
    shutil.rmtree(BENCH_ROOT / tag / "delta", ignore_errors=True)


if __name__ == "__main__":
    main()
