"""`make demo`: the whole product end to end on generated data, each step timed.

Loads a generated shop into Delta, trains and publishes a model with spark-submit, starts the
streaming job and the API, then shows one shopper's recommendations before and after a few new
events posted over HTTP. Ctrl-C (or the end of the demo) stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import requests
from deltalake import DeltaTable

from recsys.config import PROJECT_ROOT, Settings, get_settings
from recsys.contracts.tables import ITEMS
from recsys.stores.model_store import query_delta
from recsys.stores.online_store import RedisOnlineStore

RUN_DIR = PROJECT_ROOT / ".local" / "run"
POLL_S = 0.1


class DemoError(RuntimeError):
    """A demo step failed; the message says which and where its log is."""


@contextmanager
def step(name: str):
    print(f"\n==> {name}", flush=True)
    started = time.monotonic()
    try:
        yield
    except Exception as exc:
        raise DemoError(f"step '{name}' failed: {exc}") from exc
    print(f"    done in {time.monotonic() - started:.1f}s", flush=True)


def run_job(job: str, *args: str) -> None:
    """Run a Spark job to completion; its log goes to .local/run/<job>.log."""
    log = RUN_DIR / f"{Path(job).stem}.log"
    with log.open("w") as out:
        code = subprocess.call([sys.executable, "-m", "recsys.spark.submit", job, *args],
                               stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{job} exited with {code}; last lines of {log}:\n{tail}")


def start_background(name: str, command: list[str]) -> subprocess.Popen:
    log = (RUN_DIR / f"{name}.log").open("w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, procs: list[subprocess.Popen]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[-1]} exited early with {proc.returncode}; see {RUN_DIR}")
        if check():
            return time.monotonic() - started
        time.sleep(POLL_S)
    raise TimeoutError(f"{what} not seen within {timeout_s:.0f}s; logs in {RUN_DIR}")


def items_by_category(settings: Settings) -> dict[str, list[str]]:
    table = DeltaTable(settings.table_path(ITEMS.name))
    rows = query_delta(table, "SELECT item_id, category FROM t")
    out: dict[str, list[str]] = {}
    for row in rows.to_pylist():
        out.setdefault(row["category"], []).append(row["item_id"])
    return out


def show(title: str, recs: dict) -> None:
    print(f"    {title} (model {recs['model_version']}, degraded={recs['degraded']}):")
    for rank, item in enumerate(recs["items"], 1):
        print(f"      {rank:2d}. {item['item_id']:<10} {item['score']:7.3f}  {'; '.join(item['reasons'])}")


def demo(args: argparse.Namespace, procs: list[subprocess.Popen]) -> None:
    settings = get_settings()
    base = f"http://{settings.serving.host}:{settings.serving.port}"
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with step(f"generate a shop ({args.users} users, {args.items} items, {args.events} events) into Delta"):
        run_job("spark_jobs/load_data.py", "--users", str(args.users), "--items", str(args.items),
                "--events", str(args.events))
    with step("tune and train implicit ALS, evaluate, gate and publish (spark-submit spark_jobs/batch.py all)"):
        os.environ.setdefault("RECSYS__TUNING__MAX_TRIALS", "3")  # a demo, not a search: keep it short
        run_job("spark_jobs/batch.py", "all")
    with step("start the streaming job (Kafka -> Delta bronze + Redis) and the API (gunicorn)"):
        procs.append(start_background("stream", [sys.executable, "-m", "recsys.spark.submit", "spark_jobs/stream.py"]))
        procs.append(start_background("api", [str(PROJECT_ROOT / ".venv" / "bin" / "gunicorn"), "--config",
                                              "api/gunicorn_conf.py", "api.wsgi:app"]))
        wait_until(lambda: http_ok(f"{base}/healthz"), 60, "API /healthz", procs)
        # The stream is live once a probe event comes back through Kafka, Spark and Redis.
        probe = f"probe-{int(time.time())}"
        requests.post(f"{base}/v1/events", json={"user_id": probe, "item_id": "probe", "event_type": "view"},
                      timeout=10).raise_for_status()
        online = RedisOnlineStore(settings.redis)
        wait_until(lambda: bool(online.recent_items(probe, 1)), 240, "first event through the stream", procs)
    shopper = args.shopper
    with step(f"shopper {shopper}: recommendations before and after new events"):
        before = get_recommendations(base, shopper, args.k)
        show("before", before)
        category, items = new_interest(items_by_category(settings), {i["item_id"] for i in before["items"]})
        views = [{"user_id": shopper, "item_id": item, "event_type": "view", "session_id": "demo"}
                 for item in items[:3]]
        print(f"    posting {len(views)} views in category '{category}': {[v['item_id'] for v in views]}")
        posted = time.monotonic()
        requests.post(f"{base}/v1/events", json=views, timeout=10).raise_for_status()
        # Scores and reasons move as soon as the views land, even when the order holds.
        changed = lambda: get_recommendations(base, shopper, args.k)["items"] != before["items"]  # noqa: E731
        latency = wait_until(changed, 60, "changed recommendations", procs)
        after = get_recommendations(base, shopper, args.k)
        show("after", after)
        print(f"    event posted -> recommendations changed in {time.monotonic() - posted:.2f}s "
              f"(polled every {POLL_S}s; detected after {latency:.2f}s)")
    if args.keep:
        print(f"\nAPI on {base}: open {base}/demo in a browser (model reports: {base}/reports), or try "
              f"{base}/v1/users/{shopper}/recommendations; Ctrl-C stops everything.")
        while all(p.poll() is None for p in procs):
            time.sleep(1)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def get_recommendations(base: str, user: str, k: int) -> dict:
    return requests.get(f"{base}/v1/users/{user}/recommendations?k={k}", timeout=5).json()


def item_ids(recs: dict) -> list[str]:
    return [i["item_id"] for i in recs["items"]]


def new_interest(catalogue: dict[str, list[str]], shown: set[str]) -> tuple[str, list[str]]:
    """The largest category none of the shown items belongs to: views there should visibly move the list."""
    shown_categories = {c for c, ids in catalogue.items() if shown & set(ids)}
    fresh = {c: ids for c, ids in catalogue.items() if c not in shown_categories} or catalogue
    category = max(fresh, key=lambda c: len(fresh[c]))
    return category, fresh[category]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--shopper", default="u000042", help="user whose recommendations are shown")
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the stream and API running until Ctrl-C")
    args = parser.parse_args()
    procs: list[subprocess.Popen] = []
    started = time.monotonic()
    try:
        demo(args, procs)
        print(f"\ndemo finished in {time.monotonic() - started:.0f}s")
    except KeyboardInterrupt:
        print("\ninterrupted; stopping what the demo started")
    except DemoError as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        for proc in procs:
            stop(proc)


if __name__ == "__main__":
    main()
