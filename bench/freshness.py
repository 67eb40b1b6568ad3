"""Freshness: time from POST /v1/events to a changed GET recommendation, on the real stack, under background load.

Self-contained like bench/soak.py: publishes a synthetic model into its own Delta root, with its own topic,
checkpoints and Redis prefix, starts the stream job and the API (api/server.py), and produces --background-rate
events per second straight to Kafka (other shoppers' steady load). Each sample times one shopper, alternating:
- a brand-new shopper posts three views (their list was the popularity list every new shopper gets);
- a known shopper (in the model) buys the first item of their list.
The clock starts when the POST is sent and stops when a GET answers a list that differs from the one before
(polled every --poll-ms). Beside it, the stream's own apply lag: from the same POST until the stream's state
holds the event (its id digest in the profile, polled the same way in the background). Prints p50/p95/p99
per kind of shopper.

    .venv/bin/python bench/freshness.py                          # make bench: 100 samples at 1,000 events/s
    .venv/bin/python bench/freshness.py --pending-max 0          # without read-your-own-writes (stream only)
    .venv/bin/python bench/freshness.py --smoke                  # tiny, no stream job (the CI smoke test)

Exit status 1 when the p95 goal (--goal-ms) is missed for either kind of shopper.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import redis
import requests
from confluent_kafka import Producer
from soak import forget_run, free_port, isolated_env, quantile, start_stack, stop

from recsys.config import PROJECT_ROOT, Settings, load_settings
from recsys.contracts.redis_keys import PROFILE_EVENT_IDS, RedisKeys, decode_profile, event_id_digest
from recsys.demo.synthetic_model import make_model, publish_model
from recsys.kafka.topics import ensure_topics

BENCH_ROOT = PROJECT_ROOT / ".local" / "bench" / "freshness"
K = 10
KINDS = ("new", "known")


@dataclass
class Timings:
    changed: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    applied: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    unchanged: int = 0  # samples whose list never changed within the timeout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100, help="samples in all (half new, half known shoppers)")
    parser.add_argument("--background-rate", type=float, default=1000.0, help="other shoppers' events per second")
    parser.add_argument("--gap-s", type=float, default=0.3, help="pause between samples")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="how often a sample polls GET and Redis")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="a sample gives up after this long")
    parser.add_argument("--apply-timeout-s", type=float, default=300.0,
                        help="how long to wait after the last sample for the stream to apply the sampled events")
    parser.add_argument("--pending-max", type=int, default=None, help="override redis.pending_max (0: overlay off)")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--goal-ms", type=float, default=300.0, help="goal: p95 of POST -> changed GET")
    parser.add_argument("--no-stream", action="store_true", help="do not start the stream job (no apply lag)")
    parser.add_argument("--smoke", action="store_true", help="CI size: 6 samples, small model, 1 worker, no stream")
    args = parser.parse_args()
    if args.smoke:
        args.samples, args.background_rate, args.users, args.items, args.rank = 6, 50.0, 200, 300, 8
        args.gap_s, args.timeout_s, args.no_stream = 0.0, 10.0, True

    tag = f"fresh-{uuid.uuid4().hex[:8]}"
    run_dir = BENCH_ROOT / tag
    run_dir.mkdir(parents=True)
    port = free_port()
    env = isolated_env(tag, run_dir, port)
    if args.pending_max is not None:
        env["RECSYS__REDIS__PENDING_MAX"] = str(args.pending_max)
    if args.smoke:
        env["RECSYS__SERVING__WORKERS"] = "1"  # one worker starts (and loads the model) faster
    settings = load_settings(env["RECSYS_ENV"], environ=env)
    ensure_topics(settings)
    model = make_model(f"fresh.{tag[6:]}", args.users, args.items, args.rank, 20)
    version = publish_model(settings, model)
    items = [f"i{n}" for n in range(args.items)]
    print(f"freshness {tag}: model {version} ({args.users} users, {args.items} items, rank {args.rank}); "
          f"{args.samples} samples at {args.background_rate:g} background events/s; redis.pending_max "
          f"{settings.redis.pending_max}; stream {'off' if args.no_stream else 'on'}; logs in {run_dir}", flush=True)
    base = f"http://127.0.0.1:{port}"
    rdb = redis.Redis.from_url(settings.redis.url)
    procs: dict[str, subprocess.Popen] = {}
    stop_load = threading.Event()
    try:
        start_stack(procs, env, run_dir, settings, base, f"warmup-{tag}", stream=not args.no_stream)
        threading.Thread(target=_background_load, args=(settings, items, args.background_rate, stop_load),
                         daemon=True).start()
        timings = _sample(args, base, settings, rdb, items, procs, run_dir)
    finally:
        stop_load.set()
        for proc in procs.values():
            stop(proc)
        forget_run(settings, rdb)
        shutil.rmtree(run_dir / "delta", ignore_errors=True)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return _report(args, timings)


def _sample(args, base: str, settings: Settings, rdb: redis.Redis, items: list[str],
            procs: dict[str, subprocess.Popen], run_dir) -> Timings:
    """Samples one after the other; the stream's apply lag is watched in the background (ApplyWatch), so a
    slow stream does not slow the samples down."""
    timings = Timings()
    watch = ApplyWatch(rdb, RedisKeys(settings.redis.key_prefix), args.poll_ms / 1000) if "stream" in procs else None
    with requests.Session() as http:
        for n in range(args.samples):
            kind = KINDS[n % 2]
            if kind == "new":
                user = f"bench-{uuid.uuid4().hex[:10]}"
                events = [{"user_id": user, "item_id": items[(n * 7 + j) % len(items)], "event_type": "view"}
                          for j in range(3)]
            else:
                user = f"u{(n * 7919) % args.users}"
                events = [{"user_id": user, "item_id": _ids(http, base, user)[0], "event_type": "purchase"}]
            events[-1]["event_id"] = f"{user}-{n}-{uuid.uuid4().hex[:6]}"
            before = _ids(http, base, user)
            posted = time.monotonic()
            http.post(f"{base}/v1/events", json=events, timeout=10).raise_for_status()
            if watch is not None:
                watch.add(kind, user, event_id_digest(events[-1]["event_id"]), posted)
            changed = None
            while changed is None and time.monotonic() - posted < args.timeout_s:
                if _ids(http, base, user) != before:
                    changed = time.monotonic() - posted
                else:
                    time.sleep(args.poll_ms / 1000)
            for name, proc in procs.items():
                if proc.poll() is not None:
                    sys.exit(f"{name} exited with {proc.returncode}; see {run_dir / name}.log")
            if changed is None:
                timings.unchanged += 1
            else:
                timings.changed[kind].append(changed)
            print(f"sample {n:3d} {kind:>5}: changed {'-' if changed is None else f'{changed * 1000:.0f} ms'}",
                  flush=True)
            time.sleep(args.gap_s)
    if watch is not None:
        timings.applied = watch.finish(args.apply_timeout_s)
    return timings


class ApplyWatch:
    """Polls the profiles of the sampled shoppers until the stream's state holds each sample's event (its id
    digest in the profile's dedupe ids): the stream's own apply lag, from the same POST."""

    def __init__(self, rdb: redis.Redis, keys: RedisKeys, poll_s: float) -> None:
        self._rdb, self._keys, self._poll_s = rdb, keys, poll_s
        self._waiting: list[tuple[str, str, str, float]] = []  # (kind, user, digest, posted)
        self._applied: dict[str, list[float]] = {k: [] for k in KINDS}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, kind: str, user: str, digest: str, posted: float) -> None:
        with self._lock:
            self._waiting.append((kind, user, digest, posted))

    def finish(self, timeout_s: float) -> dict[str, list[float]]:
        """Wait for the events still unapplied (at most timeout_s), then the lags per kind; prints what is left."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._waiting:
            time.sleep(0.5)
        self._stop.set()
        self._thread.join()
        if self._waiting:
            print(f"stream: {len(self._waiting)} sampled events not applied within {timeout_s:g}s after the last")
        return self._applied

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                waiting = list(self._waiting)
            if waiting:
                pipe = self._rdb.pipeline(transaction=False)
                for _, user, _, _ in waiting:
                    pipe.get(self._keys.profile(user))
                now = time.monotonic()
                done = set()
                for entry, raw in zip(waiting, pipe.execute(), strict=True):
                    kind, _, digest, posted = entry
                    if digest in (decode_profile(raw)[0].get(PROFILE_EVENT_IDS) or ()):
                        self._applied[kind].append(now - posted)
                        done.add(entry)
                with self._lock:
                    self._waiting = [entry for entry in self._waiting if entry not in done]
            time.sleep(self._poll_s)


def _report(args, timings: Timings) -> int:
    print(f"\nfreshness at {args.background_rate:g} background events/s, POST sent -> changed GET "
          f"(poll {args.poll_ms:g} ms):")
    missed = []
    for kind in KINDS:
        changed, applied = timings.changed[kind], timings.applied[kind]
        p95 = quantile(changed, 0.95)
        lag = (f"p50 {quantile(applied, 0.5) * 1000:.0f} ms  p95 {quantile(applied, 0.95) * 1000:.0f} ms"
               if applied else "not measured (no stream)")
        print(f"{kind:>5} shoppers: n {len(changed):3d}  p50 {quantile(changed, 0.5) * 1000:6.0f} ms  "
              f"p95 {p95 * 1000:6.0f} ms  p99 {quantile(changed, 0.99) * 1000:6.0f} ms  |  stream apply lag {lag}")
        if not changed or not p95 * 1000 <= args.goal_ms:
            missed.append(f"{kind} p95")
    print(f"unchanged within {args.timeout_s:g}s: {timings.unchanged}")
    print("goal met" if not missed else f"goal missed ({', '.join(missed)} > {args.goal_ms:g} ms)")
    return 1 if missed else 0


def _background_load(settings: Settings, items: list[str], rate: float, stop_load: threading.Event) -> None:
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


def _ids(http: requests.Session, base: str, user: str) -> list[str]:
    answer = http.get(f"{base}/v1/users/{user}/recommendations?k={K}", timeout=30)
    answer.raise_for_status()
    return [item["item_id"] for item in answer.json()["items"]]


if __name__ == "__main__":
    sys.exit(main())
