"""Serving latency, throughput, memory and two-stage quality: wrk on loopback against the API, with real-time state.

For each catalogue size of --sizes (default 100k and 1M items x 64 factors): writes a synthetic published model
(recsys.demo.synthetic_model) into its own Delta root, gives --active-users shoppers real-time state by running
their events through the speed layer's own Redis writer (recent items, folded-in vectors, interests, co-views,
purchases, trending), starts the API as `make serve` does, records --pending-users of them events the stream
has not applied yet (as POST /v1/events does: serving overlays and folds them in), and runs wrk (Debian
package `wrk`) for each scenario and connection count. Then prints, per size:
- p50/p90/p99 and requests/s per run, each worker's busy cores, and the CPU per request in the workers and in
  the rest of the machine (wrk, Redis, the broker, the kernel): at that cost, the most requests/s the machine's
  cores could serve;
- the memory of all workers (RSS and PSS, from /proc/<pid>/smaps_rollup) beside one copy of the model (the
  version's memory-mapped files under serving.retrieval.cache_dir), and each worker's anonymous memory;
- NDCG@10 of two-stage serving and of full-catalogue scoring (serving.retrieval.mode) against held-out items of
  each active shopper (5 of their 50 best by the synthetic model's planted taste), and how their top 10 overlap;
- where the time of one request goes (cProfile through the Flask app, no HTTP): Flask, validation, Redis,
  retrieval, ranking, reasons, the served-list record, JSON.

    .venv/bin/python bench/serving_load.py --sizes 100000,1000000 --rank 64 --seconds 20
    .venv/bin/python bench/serving_load.py --smoke     # seconds, tiny shop: what the CI smoke test runs
"""

from __future__ import annotations

import argparse
import cProfile
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
import psutil
import redis
import requests
from soak import worker_cpu

from recsys.batch.reference_metrics import ndcg_at_k
from recsys.config import PROJECT_ROOT, load_settings
from recsys.contracts.events import Event
from recsys.contracts.redis_keys import RedisKeys
from recsys.demo.synthetic_model import make_model, publish_model
from recsys.ingest.producer import Delivered
from recsys.speed import context
from recsys.speed.adjustments import SpeedEvent
from recsys.speed.redis_state import RedisStateWriter
from recsys.speed.trending import rebuild_trending
from recsys.stores.pending_events import RedisPendingEvents

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


TRUTH_ITEMS, TRUTH_POOL = 5, 50  # a shopper's held-out items: 5 of their 50 best by the planted taste


def held_out(model, users: int, seed: int = 13) -> dict[str, set[str]]:
    """Each of the first `users` shoppers' held-out items: TRUTH_ITEMS drawn from their TRUTH_POOL best items by
    the synthetic model's own (planted) taste, which their live events then pull away from, alike in both modes."""
    rng = np.random.default_rng(seed)
    out = {}
    for user in range(min(users, len(model.user_ids))):
        scores = model.item_factors @ model.user_factors[user]
        pool = np.argpartition(-scores, TRUTH_POOL)[:TRUTH_POOL]
        out[model.user_ids[user]] = {model.item_ids[i] for i in rng.choice(pool, TRUTH_ITEMS, replace=False)}
    return out


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


def pending_state(settings, users: range, n_items: int, per_user: int = 2, seed: int = 12) -> int:
    """Acknowledged events the stream has not applied yet, recorded as POST /v1/events records them: serving
    overlays them (read your own writes), which folds them in against the served model in every worker."""
    rng = np.random.default_rng(seed)
    events = [Event(user_id=f"u{user}", item_id=f"i{rng.integers(n_items)}", event_type="view")
              for user in users for _ in range(per_user)]
    at = [Delivered(settings.kafka.events_topic, 0, 10**12 + n) for n in range(len(events))]  # past any watermark
    client = redis.Redis.from_url(settings.redis.url)
    if not RedisPendingEvents(settings.redis, settings.kafka.events_topic, settings.kafka.topic_partitions,
                              client).record(events, at):
        sys.exit("could not record the pending events in Redis")
    return len(events)


WRK_TIMEOUT_S = 30  # a slow answer is a latency to report, not a request lost (wrk's own default is 2 s)


def run_wrk(base: str, scenario: str, connections: int, seconds: int, users: int, n_items: int,
            n_categories: int, master: int | None = None) -> dict:
    """wrk's figures; with the server's pid, also each worker's cores busy. wrk holds its connections for the
    whole run and the kernel may hand all of them to one worker (one GIL, one core): the split shows it. Also the
    whole machine's busy cores (wrk, Redis, the broker and the kernel share them with the workers)."""
    before = worker_cpu(master) if master is not None else {}
    machine_before = machine_busy_s()
    script = Path(tempfile.mkdtemp()) / "bench.lua"
    script.write_text(LUA.replace("{users}", str(users)).replace("{categories}", str(n_categories))
                      .replace("{items}", str(n_items)).replace("{scenario}", scenario))
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout",
                          f"{WRK_TIMEOUT_S}s", "-s", str(script), base],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    requests_done, errors, micros, p50, p90, p99, worst = line.split()[1:]
    result = {"scenario": scenario, "connections": connections, "requests": int(requests_done),
              "errors": int(errors), "rps": round(int(requests_done) / (int(micros) / 1e6), 1), "p50_ms": float(p50),
              "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(worst),
              "machine_cores": round((machine_busy_s() - machine_before) / (int(micros) / 1e6), 2)}
    if master is not None:
        after = worker_cpu(master)
        result["worker_cores"] = sorted((round((after[pid] - before.get(pid, 0.0)) / (int(micros) / 1e6), 2)
                                         for pid in after), reverse=True)
    return result


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (every core; idle, I/O wait and stolen time left out)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def cpu_per_request(run: dict) -> str:
    """A run's CPU per request, the workers' and the rest of the machine's, and the rate the machine's cores
    could at most serve at that cost (every core busy: latency grows long before)."""
    if not run.get("requests") or "worker_cores" not in run:
        return ""
    workers_ms = sum(run["worker_cores"]) / run["rps"] * 1000
    rest_ms = max(run["machine_cores"] - sum(run["worker_cores"]), 0.0) / run["rps"] * 1000
    ceiling = psutil.cpu_count() / ((workers_ms + rest_ms) / 1000)
    return (f"{run['scenario']} at {run['connections']} connections: CPU per request {workers_ms:.2f} ms in the "
            f"workers + {rest_ms:.2f} ms elsewhere (wrk, Redis, broker, kernel); {psutil.cpu_count()} cores "
            f"serve at most {ceiling:.0f} req/s at that cost")


def smaps(pid: int) -> dict[str, int]:
    """kB figures of /proc/<pid>/smaps_rollup (Rss, Pss, Anonymous, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        out[name.strip()] = int(value.split()[0])
    return out


def memory(master: int, cache_dir: Path) -> dict:
    """RSS and PSS of every server worker together, each one's anonymous memory, and one model copy (the
    mapped files of the served version, the largest folder under the cache)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    figures = [smaps(int(pid)) for pid in children]
    folders = [p for p in cache_dir.iterdir() if p.is_dir()] if cache_dir.is_dir() else []
    copy = max((sum(f.stat().st_size for f in folder.iterdir()) for folder in folders), default=0)
    return {"workers": len(figures), "rss_mb": sum(f["Rss"] for f in figures) / 1024,
            "pss_mb": sum(f["Pss"] for f in figures) / 1024,
            "anonymous_mb": [round(f["Anonymous"] / 1024, 1) for f in figures], "model_copy_mb": copy / 2**20}


def quality(environ: dict, truth: dict[str, set[str]], k: int, users: int) -> dict:
    """NDCG@k of two-stage and full scoring against the shoppers' held-out items, through the library call with
    the same real-time state, and the mean overlap of their top k."""
    from api.services import build_services
    from recsys.serving.recommender import RecommendationQuery

    shoppers = sorted(truth)[:users]
    ranked = {}
    for mode in ("two_stage", "full"):
        settings = load_settings(environ["RECSYS_ENV"], environ={**environ,
                                                                 "RECSYS__SERVING__RETRIEVAL__MODE": mode})
        recommender = build_services(settings).recommender
        ranked[mode] = {u: [i.item_id for i in recommender.recommend(u, RecommendationQuery(k=k)).items]
                        for u in shoppers}
    per_user = {mode: np.asarray([ndcg_at_k(ranked[mode][u], truth[u], k) for u in shoppers]) for mode in ranked}
    out = {f"ndcg_{mode}": float(scores.mean()) for mode, scores in per_user.items()}
    out["change_ci"] = paired_change_ci(per_user["two_stage"], per_user["full"])
    out["overlap"] = float(np.mean([len(set(ranked["two_stage"][u]) & set(ranked["full"][u])) / k
                                    for u in shoppers]))
    return out


def paired_change_ci(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 5) -> tuple[float, float]:
    """95% bootstrap interval of mean(a) / mean(b) - 1 over the same users resampled for both: whether the
    two modes' difference is more than which shoppers happened to be drawn."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(len(a), size=(resamples, len(a)))
    change = a[draws].mean(axis=1) / np.maximum(b[draws].mean(axis=1), 1e-12) - 1
    low, high = np.percentile(change, [2.5, 97.5])
    return float(low), float(high)


# Where a request's time goes: (label, module path suffix, function), cumulative time; "Flask" is the rest.
STAGES = [
    ("validation (flask-openapi3, pydantic)", "flask_openapi3/request.py", "_validate_request"),
    ("Redis: one script (state, co-views, trending)", "recsys/stores/online_store.py", "request_state"),
    ("retrieval (candidates)", "recsys/serving/candidates.py", "candidates"),
    ("ranking (merge, top k, reasons)", "recsys/serving/merge.py", "_rank"),
    ("  of which reasons and explain", "recsys/serving/merge.py", "_scored"),
    ("recommender, the rest (taste, history, ...)", "recsys/serving/recommender.py", "recommend"),
    ("served-list record + attribution (queued)", "recsys/serving/served_lists.py", "serve_list"),
    ("JSON", "flask/json/__init__.py", "jsonify"),
]


def where_time_goes(environ: dict, users: int, calls: int) -> str:
    """cProfile of GET /v1/users/<id>/recommendations through the Flask app in this process (no HTTP)."""
    os.environ.update(environ)
    from api.factory import create_app

    settings = load_settings(environ["RECSYS_ENV"], environ=environ)
    client = create_app(settings).test_client()
    rng = np.random.default_rng(3)
    client.get("/v1/users/u0/recommendations")  # the model load is not part of a request
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for _ in range(calls):
        client.get(f"/v1/users/u{rng.integers(users)}/recommendations?k=10&explain=true")
    profile.disable()
    total_ms = (time.perf_counter() - started) * 1000 / calls
    stats = pstats.Stats(profile).stats
    cumulative = {}
    for label, path, name in STAGES:
        cumulative[label] = sum(v[3] for (file, _, function), v in stats.items()
                                if file.endswith(path) and function == name) * 1000 / calls
    recommend, serve = (cumulative[label] for label in ("recommender, the rest (taste, history, ...)",
                                                        "served-list record + attribution (queued)"))
    inside = sum(cumulative[label] for label in cumulative if label.startswith(("Redis: ", "retrieval", "ranking")))
    cumulative["recommender, the rest (taste, history, ...)"] = max(recommend - inside, 0.0)
    cumulative["served-list record + attribution (queued)"] = max(serve - recommend, 0.0)
    accounted = sum(v for label, v in cumulative.items() if not label.startswith("  "))
    lines = [f"{label:<44} {ms:7.3f} ms" for label, ms in cumulative.items()]
    lines.append(f"{'Flask, werkzeug, auth, metrics (the rest)':<44} {max(total_ms - accounted, 0.0):7.3f} ms")
    lines.append(f"{'total per request (under cProfile)':<44} {total_ms:7.3f} ms")
    return "\n".join(lines)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=120).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading the model
        return False


def run_size(args, n_items: int) -> dict:
    """One catalogue size: publish, state, the API, wrk runs, memory, quality, profile."""
    tag = uuid.uuid4().hex[:6]
    root = BENCH_ROOT / tag
    environ = {**os.environ, "RECSYS_ENV": os.environ.get("RECSYS_ENV", "local"),
               "RECSYS__STORAGE__DELTA_ROOT": str(root / "delta"),
               "RECSYS__SERVING__RETRIEVAL__CACHE_DIR": str(root / "model-cache"),
               "RECSYS__REDIS__KEY_PREFIX": f"bench-serving-{tag}", "RECSYS__SERVING__ACCESS_LOG": "false"}
    if args.port:
        environ["RECSYS__SERVING__PORT"] = str(args.port)
    settings = load_settings(environ["RECSYS_ENV"], environ=environ)
    started = time.time()
    model = make_model(f"bench.{tag}", args.users, n_items, args.rank, args.categories)
    version = publish_model(settings, model)
    print(f"\n=== {n_items:,} items x {args.rank} factors ({settings.serving.retrieval.mode}) ===\n"
          f"model {version}: {args.users:,} users, written in {time.time() - started:.1f}s", flush=True)
    seconds = realtime_state(settings, version, args.active_users, args.events_per_user, n_items, model.categories)
    truth = held_out(model, min(args.quality_users, args.active_users))
    print(f"real-time state for {args.active_users:,} users ({args.events_per_user} events each) in {seconds:.1f}s",
          flush=True)
    del model
    base = f"http://{settings.serving.host}:{settings.serving.port}"
    log = (root / "api.log").open("w")
    api = subprocess.Popen([sys.executable, "-m", "api.server"], cwd=PROJECT_ROOT, env=environ, stdout=log,
                           stderr=subprocess.STDOUT)
    results, out = [], {"items": n_items}
    try:
        deadline, started = time.time() + args.start_timeout, time.time()
        for _ in range(settings.serving.workers * 2):  # each worker loads (and the first shares) the model
            while not _answers(f"{base}/v1/users/u0/recommendations"):
                if api.poll() is not None or time.time() > deadline:
                    sys.exit(f"the API did not start; see {log.name}")
                time.sleep(1)
        print(f"API ready in {time.time() - started:.1f}s (model load, shared files and index build)", flush=True)
        # After the start: pending entries expire (redis.pending_ttl_s). Not the quality users (the first ones).
        pending = pending_state(settings, range(max(args.active_users - args.pending_users, 0), args.active_users),
                                n_items)
        print(f"{pending:,} pending events of {args.pending_users:,} shoppers (read your own writes)", flush=True)
        # Unrecorded: every worker (the kernel may have sent all probes to one) answers once before the clock runs.
        run_wrk(base, "full", max(int(c) for c in args.connections.split(",")) * settings.serving.workers,
                args.warmup_seconds, args.active_users, n_items, args.categories)
        for scenario in args.scenarios.split(","):
            for connections in (int(c) for c in args.connections.split(",")):
                result = run_wrk(base, scenario, connections, args.seconds, args.active_users, n_items,
                                 args.categories, master=api.pid)
                results.append(result)
                print(json.dumps(result), flush=True)
        out["memory"] = memory(api.pid, Path(settings.path(settings.serving.retrieval.cache_dir)))
    finally:
        api.terminate()
        try:
            api.wait(30)
        except subprocess.TimeoutExpired:
            api.kill()
    try:
        out["quality"] = quality(environ, truth, args.k, args.quality_users)
        out["profile"] = where_time_goes(environ, args.active_users, args.profile_calls)
    finally:
        client = redis.Redis.from_url(settings.redis.url)
        client.delete(*client.keys(f"{settings.redis.key_prefix}:*") or ["-"])
        shutil.rmtree(root, ignore_errors=True)
    out["runs"] = results
    return out


def report(out: dict, k: int) -> None:
    print(f"\n{out['items']:,} items\n{'scenario':<10} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} "
          f"{'p99 ms':>7} {'errors':>6}  cores by worker")
    for r in out["runs"]:
        print(f"{r['scenario']:<10} {r['connections']:>5} {r['rps']:>8.0f} "
              f"{r['p50_ms']:>7.2f} {r['p90_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['errors']:>6}  "
              + " ".join(f"{c:.2f}" for c in r.get("worker_cores", [])))
    for r in out["runs"]:
        if line := cpu_per_request(r):
            print(line)
    m = out["memory"]
    ratio = m["pss_mb"] / max(m["model_copy_mb"], 1)
    print(f"memory: {m['workers']} workers, RSS {m['rss_mb']:.0f} MB, PSS {m['pss_mb']:.0f} MB together; one model "
          f"copy (mapped files) {m['model_copy_mb']:.0f} MB; PSS / copy {ratio:.2f}; "
          f"anonymous per worker {m['anonymous_mb']} MB")
    q = out["quality"]
    print(f"quality: NDCG@{k} two-stage {q['ndcg_two_stage']:.4f}, full scoring {q['ndcg_full']:.4f} "
          f"({(q['ndcg_two_stage'] / q['ndcg_full'] - 1) * 100 if q['ndcg_full'] else 0.0:+.2f}%, 95% interval "
          f"{q['change_ci'][0] * 100:+.2f}% .. {q['change_ci'][1] * 100:+.2f}% over the shoppers drawn); top-{k} "
          f"overlap {q['overlap']:.3f}")
    print("where the time goes in one GET /v1/users/<id>/recommendations (cProfile, Flask app in process):")
    print(out["profile"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="catalogue sizes (items), one full run each")
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--categories", type=int, default=40)
    parser.add_argument("--active-users", type=int, default=20_000, help="users with real-time state")
    parser.add_argument("--events-per-user", type=int, default=20)
    parser.add_argument("--pending-users", type=int, default=2_000,
                        help="active shoppers (the last ones) with events the stream has not applied yet")
    parser.add_argument("--seconds", type=int, default=20, help="per wrk run")
    parser.add_argument("--warmup-seconds", type=int, default=5, help="unrecorded wrk run that warms every worker")
    parser.add_argument("--connections", default="4,16")
    parser.add_argument("--scenarios", default="full,filtered,similar")
    parser.add_argument("--k", type=int, default=10, help="NDCG@k")
    parser.add_argument("--quality-users", type=int, default=2000, help="active shoppers the NDCG is taken over")
    parser.add_argument("--profile-calls", type=int, default=2000)
    parser.add_argument("--start-timeout", type=int, default=1800, help="seconds the API may take to serve")
    parser.add_argument("--port", type=int, default=0, help="serve on this port (0: serving.port)")
    parser.add_argument("--smoke", action="store_true", help="tiny shop, seconds: what the CI smoke test runs")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.users, args.active_users, args.events_per_user = "3000", 300, 200, 8
        args.seconds, args.warmup_seconds, args.connections, args.scenarios = 3, 3, "2", "full"
        args.quality_users, args.profile_calls, args.categories, args.pending_users = 100, 50, 10, 50
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (Debian) — `make setup` does it")
    outs = [run_size(args, int(size)) for size in args.sizes.split(",")]
    print("\nSUMMARY (figures of this machine as it was loaded during the run)")
    for out in outs:
        report(out, args.k)


if __name__ == "__main__":
    main()
