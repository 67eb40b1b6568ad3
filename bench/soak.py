"""Soak: mixed traffic at a steady rate against the API with the stream job running, then an audit of bronze.

Everything on loopback and bounded in time. Writes a synthetic published model into its own Delta root,
with its own topic, checkpoints and Redis prefix (nothing shared is touched but the brokers themselves),
starts the stream job (spark-submit) and the API as `make stream` and `make serve` do, and sends --rate
requests per second for --seconds: 80% `GET /v1/users/<id>/recommendations`, 20% `POST /v1/events` (one
event each, with its own event_id). Prints errors by kind, p50/p99, the API workers' RSS at start and
end, Redis memory, and afterwards checks that every acknowledged (202) event is in bronze exactly once.

    .venv/bin/python bench/soak.py                    # 500 req/s for 10 minutes (make bench-soak)
    .venv/bin/python bench/soak.py --smoke            # a few seconds at a low rate (the CI smoke test)

Exit status 1 when a goal is missed: any error, an acknowledged event missing or doubled in bronze, or (runs
of a minute or more) worker RSS grown by more than --max-rss-growth.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
import redis
import requests
from confluent_kafka.admin import AdminClient
from deltalake import DeltaTable

from recsys.config import PROJECT_ROOT, Settings, load_settings
from recsys.contracts.redis_keys import REALTIME_QUERY, RedisKeys
from recsys.contracts.tables import EVENTS_BRONZE
from recsys.demo.synthetic_model import make_model, publish_model
from recsys.kafka.topics import ensure_topics, project_topics
from recsys.stores.model_store import query_delta

BENCH_ROOT = PROJECT_ROOT / ".local" / "bench" / "soak"
READ_SHARE = 0.8  # the rest are event posts
RSS_MIN_SECONDS = 60  # shorter runs report RSS but do not judge its growth (start-up allocations dominate)
EVENT_TYPES = ("view", "view", "view", "click", "add_to_cart", "purchase")


STALL_S = 0.5  # an answer this slow marks its second as a stall
STALLS_SHOWN = 20


@dataclass
class Outcome:
    """What the load saw; filled by the client's requests, all on one asyncio loop."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"read": [], "event": []})
    errors: Counter = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # events answered with an error: may or may not be stored
    sent: int = 0
    late: int = 0  # requests sent more than a second after their slot (the client fell behind)
    slowest: dict[int, float] = field(default_factory=dict)  # wall-clock second -> slowest answer sent in it

    def count(self, error: str | None = None, late: bool = False) -> None:
        self.sent += 1
        self.late += late
        if error is not None:
            self.errors[error] += 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name: str, command: list[str], env: dict, run_dir: Path) -> subprocess.Popen:
    log = (run_dir / f"{name}.log").open("w")
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def isolated_env(tag: str, run_dir: Path, port: int) -> dict[str, str]:
    """The environment of a bench run of its own: Delta root, checkpoints, topic, Redis prefix, API port."""
    return {**os.environ, "RECSYS_ENV": os.environ.get("RECSYS_ENV", "local"),
            "RECSYS__STORAGE__DELTA_ROOT": str(run_dir / "delta"),
            "RECSYS__STORAGE__CHECKPOINT_ROOT": str(run_dir / "checkpoints"),
            "RECSYS__KAFKA__EVENTS_TOPIC": tag, "RECSYS__REDIS__KEY_PREFIX": f"{tag}:v1",
            "RECSYS__SERVING__HOST": "127.0.0.1", "RECSYS__SERVING__PORT": str(port),
            "RECSYS__SERVING__ACCESS_LOG": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "prometheus")}


def forget_run(settings: Settings, rdb: redis.Redis) -> None:
    """Delete a run's Redis keys (its prefix) and its topics."""
    for key in rdb.scan_iter(f"{settings.redis.key_prefix}:*", count=1000):
        rdb.delete(key)
    AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers}).delete_topics(project_topics(settings))


def stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM the process group (it leads its own session), SIGKILL what is left."""
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def wait_for(check, timeout_s: float, what: str, procs: dict[str, subprocess.Popen], run_dir: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                sys.exit(f"{name} exited with {proc.returncode} while waiting for {what}; see {run_dir / name}.log")
        try:
            if check():
                return
        except (requests.RequestException, redis.RedisError):
            pass
        time.sleep(0.5)
    sys.exit(f"{what} not seen within {timeout_s:.0f}s; logs in {run_dir}")


def start_stack(procs: dict[str, subprocess.Popen], env: dict, run_dir: Path, settings: Settings, base: str,
                warmup_id: str, stream: bool = True, stream_nice: int = 0) -> None:
    """Start the stream job (unless not `stream`; at niceness `stream_nice`) and the API into `procs` (the caller
    stops them), wait until the API answers and the stream has applied a first batch, and let every worker load
    the model."""
    if stream:
        niced = ["nice", "-n", str(stream_nice)] if stream_nice else []
        procs["stream"] = start("stream", [*niced, sys.executable, "-m", "recsys.spark.submit", "spark_jobs/stream.py"],
                                env, run_dir)
        if stream_nice:
            lower_session_priority(procs["stream"].pid, stream_nice)
    procs["api"] = start("api", [sys.executable, "-m", "api.server"], env, run_dir)
    wait_for(lambda: requests.get(f"{base}/v1/users/u0/recommendations", timeout=30).ok, 180, "the API",
             procs, run_dir)
    if stream:
        requests.post(f"{base}/v1/events", timeout=30, json={  # the stream's first batch: it is running
            "event_id": warmup_id, "user_id": "u0", "item_id": "i0", "event_type": "view"}).raise_for_status()
        progress = RedisKeys(settings.redis.key_prefix).stream_progress(REALTIME_QUERY)
        rdb = redis.Redis.from_url(settings.redis.url)
        wait_for(lambda: rdb.exists(progress), 600, "the stream's first batch", procs, run_dir)
    for n in range(20 * len(worker_rss(procs["api"].pid))):  # every worker loads its model first
        requests.get(f"{base}/v1/users/u{n}/recommendations", timeout=60)


def lower_session_priority(pid: int, nice: int) -> None:
    """Give the session `pid` leads (its own autogroup) the niceness `nice` against other sessions.

    With the kernel's autogroup scheduling (sched_autogroup_enabled), the CPU is shared between sessions first, so
    a process's own niceness only counts within its session: `nice` alone leaves the stream's JVM an equal share
    beside the API's session. The session's autogroup niceness is what the scheduler compares.
    """
    autogroup = Path(f"/proc/{pid}/autogroup")
    if autogroup.exists():
        autogroup.write_text(str(nice))


def worker_rss(master: int) -> dict[int, int]:
    """RSS in bytes of each API worker (the server process's children)."""
    out = {}
    for child in psutil.Process(master).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            out[child.pid] = child.memory_info().rss
    return out


def worker_cpu(master: int) -> dict[int, float]:
    """User plus system CPU seconds of each API worker: a worker runs Python under one GIL, so one that gets
    most connections saturates its core while the other idles."""
    out = {}
    for child in psutil.Process(master).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            out[child.pid] = times.user + times.system
    return out


def listener_pid(port: int) -> int | None:
    """The process listening on a loopback TCP port (the local broker or Redis), if this host has one."""
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def cpu_seconds(roots: dict[str, int | None], alone: tuple[str, ...] = ("client",)) -> dict[str, float]:
    """User plus system CPU seconds of each named process and its descendants (where the time goes); the
    processes named in `alone` without theirs (the client, whose children are the stack it measures)."""
    out = {}
    for name, pid in roots.items():
        total = 0.0
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid) if pid else None
            family = [] if root is None else [root] if name in alone else [root, *root.children(recursive=True)]
            for proc in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = proc.cpu_times()
                    total += times.user + times.system
        out[name] = total
    return out


def redis_memory(client: redis.Redis, prefix: str) -> tuple[int, int]:
    """(used_memory of the whole Redis, keys under this run's prefix)."""
    keys = sum(1 for _ in client.scan_iter(f"{prefix}:*", count=1000))
    return int(client.info("memory")["used_memory"]), keys


def run_load(base: str, rate: float, seconds: float, connections: int, users: int, items: int,
             tag: str) -> Outcome:
    """Open-loop load from one asyncio loop (aiohttp): request i is due at start + i / rate, whatever the answers
    of earlier ones; at most `connections` are open at once. One loop, not a thread per connection, so that the
    client takes as little as it can of the CPU it shares with the server."""
    return asyncio.run(_load(base, rate, seconds, connections, users, items, tag))


async def _load(base: str, rate: float, seconds: float, connections: int, users: int, items: int,
                tag: str) -> Outcome:
    outcome = Outcome()
    loop = asyncio.get_running_loop()

    async def send(session: aiohttp.ClientSession, i: int, late: bool) -> None:
        kind = "event" if (i % 10) >= READ_SHARE * 10 else "read"
        user = f"u{(i * 7919) % users}"
        event_id = f"{tag}-{i}"
        sent = loop.time()
        try:
            if kind == "read":
                request = session.get(f"{base}/v1/users/{user}/recommendations", params={"k": "10"})
            else:
                request = session.post(f"{base}/v1/events", json={
                    "event_id": event_id, "user_id": user, "item_id": f"i{(i * 104729) % items}",
                    "event_type": EVENT_TYPES[i % len(EVENT_TYPES)]})
            async with request as r:
                body = await r.json(content_type=None) if r.status >= 400 else await r.read()
            took = loop.time() - sent
            outcome.latencies[kind].append(took)
            second = int(time.time() - took)
            outcome.slowest[second] = max(outcome.slowest.get(second, 0.0), took)
            if kind == "event":
                (outcome.acknowledged if r.status == 202 else outcome.refused).append(event_id)
            outcome.count(f"{kind} {r.status} {body.get('error', '')}".strip() if r.status >= 400 else None, late)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            outcome.count(f"{kind} {type(exc).__name__}", late)
            if kind == "event":
                outcome.refused.append(event_id)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        started = loop.time() + 0.5
        pending: set[asyncio.Task] = set()
        for i in range(int(rate * seconds)):
            delay = started + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(send(session, i, late=delay < -1.0))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    return outcome


def bronze_counts(settings: Settings, tag: str) -> dict[str, int]:
    """event_id -> rows in bronze, for this run's events."""
    path = settings.table_path(EVENTS_BRONZE.name)
    try:
        table = DeltaTable(path)
    except Exception:  # not created yet: the stream has not committed a batch
        return {}
    rows = query_delta(table, f"SELECT event_id, count(*) AS n FROM t WHERE event_id LIKE '{tag}-%' GROUP BY event_id")
    return dict(zip(rows.column("event_id").to_pylist(), rows.column("n").to_pylist(), strict=True))


def audit_bronze(settings: Settings, tag: str, acknowledged: list[str], timeout_s: float) -> dict[str, int]:
    """Wait until every acknowledged event is in bronze (or the timeout); count missing, doubled and extra."""
    wanted = set(acknowledged)
    deadline = time.monotonic() + timeout_s
    counts = bronze_counts(settings, tag)
    while not wanted <= set(counts) and time.monotonic() < deadline:
        time.sleep(1.0)
        counts = bronze_counts(settings, tag)
    return {"acknowledged": len(wanted), "found_once": sum(1 for e in wanted if counts.get(e) == 1),
            "missing": len(wanted - set(counts)), "doubled": sum(1 for e in wanted if counts.get(e, 0) > 1),
            "unacknowledged_stored": len(set(counts) - wanted)}


def quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second (80%% reads, 20%% events)")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--connections", type=int, default=64, help="most requests in flight at once")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--max-rss-growth", type=float, default=0.10, help="goal: worker RSS growth, start to end")
    parser.add_argument("--audit-timeout", type=float, default=300.0, help="how long to wait for bronze")
    parser.add_argument("--stream-nice", type=int, default=0,
                        help="run the stream job at this niceness (a shared box: serving first, the stream catches up)")
    parser.add_argument("--smoke", action="store_true", help="tiny size for CI: 6 s at 20 req/s, small model")
    args = parser.parse_args()
    if args.smoke:
        args.rate, args.seconds, args.connections, args.users, args.items, args.rank = 20.0, 6.0, 4, 200, 300, 8

    tag = f"soak-{uuid.uuid4().hex[:8]}"
    run_dir = BENCH_ROOT / tag
    run_dir.mkdir(parents=True)
    port = free_port()
    env = isolated_env(tag, run_dir, port)
    settings = load_settings(env["RECSYS_ENV"], environ=env)
    ensure_topics(settings)
    model = make_model(f"soak.{tag[5:]}", args.users, args.items, args.rank, 20)
    version = publish_model(settings, model)
    print(f"soak {tag}: model {version} ({args.users} users, {args.items} items, rank {args.rank}); "
          f"{args.rate:g} req/s for {args.seconds:g}s, env {settings.env}; logs in {run_dir}", flush=True)
    base = f"http://127.0.0.1:{port}"
    rdb = redis.Redis.from_url(settings.redis.url)
    keys = RedisKeys(settings.redis.key_prefix)
    procs: dict[str, subprocess.Popen] = {}
    try:
        start_stack(procs, env, run_dir, settings, base, f"warmup-{tag}", stream_nice=args.stream_nice)
        rss_start, (redis_start, _) = worker_rss(procs["api"].pid), redis_memory(rdb, keys.prefix)
        roots = {"client": os.getpid(), "api": procs["api"].pid, "stream": procs["stream"].pid,
                 "kafka": listener_pid(int(settings.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])),
                 "redis": listener_pid(rdb.connection_pool.connection_kwargs.get("port", 6379))}
        cpu_start, workers_start = cpu_seconds(roots), worker_cpu(procs["api"].pid)
        t0 = time.monotonic()
        outcome = run_load(base, args.rate, args.seconds, args.connections, args.users, args.items, tag)
        took = time.monotonic() - t0
        cpu = {name: used - cpu_start[name] for name, used in cpu_seconds(roots).items()}
        workers = {pid: used - workers_start.get(pid, 0.0) for pid, used in worker_cpu(procs["api"].pid).items()}
        rss_end, (redis_end, prefix_keys) = worker_rss(procs["api"].pid), redis_memory(rdb, keys.prefix)
        audit = audit_bronze(settings, tag, outcome.acknowledged,
                             args.audit_timeout + 4 * settings.stream.bronze_trigger_s)
    finally:
        for proc in procs.values():
            stop(proc)
        forget_run(settings, rdb)

    sent, errors = outcome.sent, sum(outcome.errors.values())
    print(f"\nrequests: {sent} in {took:.1f}s = {sent / took:.0f} req/s (target {args.rate:g}); "
          f"{outcome.late} sent over 1 s late")
    print(f"errors: {errors}" + (f"  {dict(outcome.errors)}" if errors else ""))
    for kind, values in outcome.latencies.items():
        print(f"{kind:>5}: n {len(values):>7}  p50 {quantile(values, 0.50) * 1000:8.1f} ms  "
              f"p99 {quantile(values, 0.99) * 1000:8.1f} ms  max {max(values, default=0) * 1000:8.1f} ms")
    stalls = sorted(second for second, worst in outcome.slowest.items() if worst >= STALL_S)
    print(f"stalls: {len(stalls)} of {len(outcome.slowest)} seconds sent a request answered after {STALL_S:g} s or "
          f"more (match them with the logs in {run_dir}): "
          + ", ".join(time.strftime("%H:%M:%S", time.localtime(second)) for second in stalls[:STALLS_SHOWN])
          + (" ..." if len(stalls) > STALLS_SHOWN else ""))
    print(f"CPU during the load, in cores busy (of {psutil.cpu_count()}): "
          + ", ".join(f"{name} {used / took:.2f}" for name, used in cpu.items())
          + f"; per request: api {cpu['api'] / max(1, sent) * 1000:.2f} ms, "
            f"client {cpu['client'] / max(1, sent) * 1000:.2f} ms; api by worker "
          + ", ".join(f"{used / took:.2f}" for used in sorted(workers.values(), reverse=True)))
    growth = (sum(rss_end.values()) - sum(rss_start.values())) / max(1, sum(rss_start.values()))
    print(f"worker RSS: start {sorted(v >> 20 for v in rss_start.values())} MiB, end "
          f"{sorted(v >> 20 for v in rss_end.values())} MiB ({growth:+.1%}; goal <= {args.max_rss_growth:.0%})")
    print(f"redis: used_memory {redis_start >> 20} MiB -> {redis_end >> 20} MiB (whole server); "
          f"{prefix_keys} keys under this run's prefix")
    print(f"bronze: {audit['acknowledged']} acknowledged, {audit['found_once']} found exactly once, "
          f"{audit['missing']} missing, {audit['doubled']} doubled; {audit['unacknowledged_stored']} stored "
          f"of {len(outcome.refused)} refused (at-least-once: a refused event may still have been written)")
    missed = []
    if errors:
        missed.append("errors")
    if audit["missing"] or audit["doubled"] or not audit["acknowledged"]:
        missed.append("bronze exactly once")
    if took >= RSS_MIN_SECONDS and growth > args.max_rss_growth:
        missed.append("RSS growth")
    print("goals met" if not missed else f"goals missed: {', '.join(missed)}")
    shutil.rmtree(run_dir / "delta", ignore_errors=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
