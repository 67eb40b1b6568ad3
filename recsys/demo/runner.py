"""`make demo`: the whole product on one machine, each step timed, until Ctrl-C.

Starts Redis and Kafka if they are down (in the background: only the stream and the API need them), loads
a generated shop or the UCI Online Retail data into Delta, runs the batch DAG through Airflow (`airflow dags
test recsys_batch <run date>`, the run date being the last day of the loaded data), starts the streaming job
and the API, waits until the demo page serves the published model with a live stream, prints the page's
address, shows one shopper's recommendations change after a few new events, and keeps running until Ctrl-C.
Ctrl-C (or SIGTERM, or the end with --no-keep) stops everything the demo started, each in its own process
group; Redis and Kafka stay up (`make down` stops them).

The retail data has its own lake, topic and Redis namespace (DATA_PROFILES), so the two shops never mix.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from recsys.config import Settings, get_settings
from recsys.contracts import model_version as mv
from recsys.data.online_retail import DEFAULT_PATH as RETAIL_PATH
from recsys.demo.airflow_runner import (
    AIRFLOW_SH,
    DAG_TASKS,
    SKIPPED_BY_DEFAULT,
    airflow_run,
    airflow_ui_running,
    start_airflow_ui,
    stop_airflow_ui,
)
from recsys.demo.output import Bar, DemoError, Steps, show
from recsys.demo.probes import (
    get_recommendations,
    http_ok,
    item_ids,
    items_by_category,
    known_items,
    start_services,
    wait_for_services,
)
from recsys.demo.processes import POLL_S, RUN_DIR, port_free, run_logged, start_background, stop, tail, wait_until
from recsys.progress import parse_progress
from recsys.stores.model_store import DeltaModelStore
from recsys.stores.online_store import RedisOnlineStore

T0_VARIABLE = "RECSYS_DEMO_T0"  # epoch seconds `make demo` started at (before setup and up); set by the Makefile
START_AFTER_TASK = "evaluate"  # the stream and the API start when this task ends, beside gate and publish
KEEP_VARIABLE = "RECSYS_DEMO_KEEP"  # 0 = run to the page and the live check, then stop (like --no-keep)

# Environment of each data source. Retail lives apart from the default lake (.local/delta), which the
# generated shop and `make train`/`make serve`/`make airflow` use.
DATA_PROFILES: dict[str, dict[str, str]] = {
    "synthetic": {},
    "retail": {
        "RECSYS__STORAGE__DELTA_ROOT": ".local/retail/delta",
        "RECSYS__STORAGE__CHECKPOINT_ROOT": ".local/retail/checkpoints",
        "RECSYS__STORAGE__REPORTS_ROOT": ".local/retail/reports",
        "RECSYS__KAFKA__EVENTS_TOPIC": "retail-events",
        "RECSYS__REDIS__KEY_PREFIX": "recsys-retail:v1",
    },
}
DEMO_DEFAULTS = {
    "RECSYS__TUNING__MAX_TRIALS": "3",  # a demo, not a search: keep the batch run short
    "RECSYS__TUNING__INTERACTION_HALF_LIFE_DAYS": "[]",  # no extra ALS fits for other decays: the demo stays short
    "RECSYS__TUNING__WEIGHT_ROUNDS": "1",  # one pass over the merge weights (a second moved nothing on the demo shop)
    "RECSYS__AIRFLOW__RETRIES": "0",  # fail fast under `airflow dags test` instead of retrying for minutes
}


# ----------------------------------------------------------------------------------------- the steps


def load_command(args: argparse.Namespace) -> list[str]:
    job = [sys.executable, "-m", "recsys.spark.submit", "spark_jobs/load_data.py", "--progress"]
    if args.data == "retail":
        return [*job, "--source", "online-retail", *(["--path", str(args.retail_path)] if args.retail_path else [])]
    return [*job, "--users", str(args.users), "--items", str(args.items), "--events", str(args.events)]


def load(args: argparse.Namespace, running: list[subprocess.Popen]) -> dict:
    """Run the load job with a bar; returns its JSON summary (counts, first_date, last_date)."""
    import json

    log = RUN_DIR / "load_data.log"
    bar = Bar(100, "%")
    summary: dict = {}

    def on_line(line: str) -> None:
        if (update := parse_progress(line)) is not None:
            bar.set(*update)
        elif line.startswith("{") and '"events"' in line:
            summary.update(json.loads(line))

    try:
        code = run_logged(load_command(args), log, on_line, bar.tick, running)
    finally:
        bar.close()
    if code != 0 or "last_date" not in summary:
        raise RuntimeError(f"spark_jobs/load_data.py exited with {code}; last lines of {log}:\n{tail(log)}")
    print(f"    {summary['events']:,} events ({summary['first_date']} .. {summary['last_date']}), "
          f"{summary['items']:,} items, {summary['users']:,} users; log {log}")
    return summary


def published_version(settings: Settings, run_date: str, base: str) -> str:
    """The model version the API will serve, after saying what the run date's DAG run decided."""
    store = DeltaModelStore(settings)
    rows = store.registry()
    mine = [r for r in rows if r.get("run_date") == run_date]
    current = mv.current_version(rows)
    if not mine:
        raise RuntimeError(f"the DAG run registered no model version for run date {run_date}")
    last = max(mine, key=lambda r: mv.sequence_of(r["model_version"]))  # as the stages find it
    print(f"    model {last['model_version']} (run date {run_date}): {last['status']}"
          + (f" ({last['gate_reason']})" if last.get("gate_reason") else "")
          + (f"; report {last['report_uri']}" if last.get("report_uri") else ""))
    if current is None:
        raise RuntimeError(f"no published model in {settings.table_path('model_registry')}: the gate rejected "
                           f"every version (see the report above); the page would have nothing to show")
    if current != last["model_version"]:
        print(f"    NOTE: the current model is {current}, published later than this run date's version, so the "
              f"page serves it (to serve this one: curl -X POST "
              f"{base}/v1/admin/models/{last['model_version']}/activate)")
    return current


def require_free_port(settings: Settings) -> None:
    host, port = settings.serving.host, settings.serving.port
    if not port_free(host, port):
        raise RuntimeError(f"{host}:{port} is already taken (a `make serve` or an earlier demo still running?)")


def start_stream_and_api(settings: Settings, procs: dict[str, subprocess.Popen]) -> None:
    """Start both in the background: the API serves the model once it is published, the stream applies events
    to whichever version is current."""
    require_free_port(settings)
    procs["stream"] = start_background("stream", [sys.executable, "-m", "recsys.spark.submit",
                                                  "spark_jobs/stream.py"])
    procs["api"] = start_background("api", [sys.executable, "-m", "api.server"])


def wait_for_api(procs: dict[str, subprocess.Popen], base: str) -> None:
    print(f"    stream (pid {procs['stream'].pid}, log {RUN_DIR / 'stream.log'}), "
          f"API (pid {procs['api'].pid}, log {RUN_DIR / 'api.log'}), started when task {START_AFTER_TASK} ended")
    took = wait_until(lambda: http_ok(f"{base}/healthz"), 90, "API /healthz", procs)
    print(f"    API answers /healthz after {took:.1f}s more")


def migrate_airflow(running: list[subprocess.Popen]) -> subprocess.Popen:
    """`airflow.sh init` (the metadata DB's one-time migration) in the background, beside the load job."""
    proc = start_background("airflow-init", ["bash", str(AIRFLOW_SH), "init"])
    running.append(proc)
    return proc


def wait_for_migration(proc: subprocess.Popen) -> None:
    if proc.wait() != 0:
        log = RUN_DIR / "airflow-init.log"
        raise RuntimeError(f"docker/local/airflow.sh init exited with {proc.returncode}; last lines of {log}:\n"
                           f"{tail(log)}")


def wait_for_page(settings: Settings, procs: dict[str, subprocess.Popen], base: str, version: str) -> None:
    """The page answers, the API serves the published model and an event comes back through the stream."""
    def serves_model() -> bool:
        try:
            return (http_ok(f"{base}/demo") and http_ok(f"{base}/reports")
                    and requests.get(f"{base}/v1/status", timeout=2).json().get("model_version") == version)
        except (requests.RequestException, ValueError):
            return False

    took = wait_until(serves_model, 90, f"/demo, /reports and model {version} in /v1/status", procs)
    print(f"    /demo and /reports answer, model {version} served ({took:.1f}s)")
    probe = f"probe-{int(time.time())}"
    requests.post(f"{base}/v1/events", json={"user_id": probe, "item_id": "probe", "event_type": "view"},
                  timeout=10).raise_for_status()
    online = RedisOnlineStore(settings.redis)
    took = wait_until(lambda: bool(online.recent_items(probe, 1)), 300, "a probe event through the stream", procs)
    print(f"    stream live: a probe event went API -> Kafka -> Spark -> Redis ({took:.1f}s)")


def live_check(settings: Settings, procs: dict[str, subprocess.Popen], base: str, shopper: str, k: int) -> None:
    before = get_recommendations(base, shopper, k)
    show("before", before)
    category, items = new_interest(items_by_category(settings), set(item_ids(before)), known_items(base))
    views = [{"user_id": shopper, "item_id": item, "event_type": "view", "session_id": "demo"}
             for item in items[:3]]
    print(f"    posting {len(views)} views in category '{category}': {[v['item_id'] for v in views]}")
    posted = time.monotonic()
    requests.post(f"{base}/v1/events", json=views, timeout=10).raise_for_status()
    # Scores and reasons move as soon as the views land, even when the order holds.
    changed = lambda: get_recommendations(base, shopper, k)["items"] != before["items"]  # noqa: E731
    latency = wait_until(changed, 60, "changed recommendations", procs)
    show("after", get_recommendations(base, shopper, k))
    print(f"    event posted -> recommendations changed in {time.monotonic() - posted:.2f}s "
          f"(polled every {POLL_S}s; detected after {latency:.2f}s)")


# ------------------------------------------------------------------------------------ shopper helpers


def new_interest(catalogue: dict[str, list[str]], shown: set[str],
                 known: Callable[[list[str]], list[str]] | None = None) -> tuple[str, list[str]]:
    """The largest category none of the shown items belongs to: views there should visibly move the list.

    With `known`, only items the served model ranks count (a view of an unknown item moves nothing)."""
    shown_categories = {c for c, ids in catalogue.items() if shown & set(ids)}
    fresh = {c: ids for c, ids in catalogue.items() if c not in shown_categories} or catalogue
    for category in sorted(fresh, key=lambda c: (-len(fresh[c]), c)):
        ids = [i for i in fresh[category] if i not in shown]
        usable = known(ids) if known is not None else ids
        if len(usable) >= 3 or known is None:
            return category, usable
    category = max(fresh, key=lambda c: len(fresh[c]))
    return category, fresh[category]


def pick_shopper(base: str, data: str) -> str:
    if data == "synthetic":
        return "u000042"
    shoppers = requests.get(f"{base}/v1/demo/shoppers", timeout=5).json().get("shoppers", [])
    if not shoppers:
        raise RuntimeError("GET /v1/demo/shoppers lists no shopper")
    return shoppers[0]


# ------------------------------------------------------------------------------------------- the demo


def run_date_of(summary: dict, override: str | None) -> str:
    """The batch run date: the last day of the loaded data, so every loaded event is in the window
    (stages train on events with event_date <= run date, decayed from the end of that day)."""
    return override or summary["last_date"]


def demo(args: argparse.Namespace, steps: Steps, procs: dict[str, subprocess.Popen],
         running: list[subprocess.Popen], state: dict) -> None:
    settings = get_settings()
    base = f"http://{settings.serving.host}:{settings.serving.port}"
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with steps.step("Redis and Kafka: docker/local/services.sh up, in the background"):
        require_free_port(settings)
        services = start_services(running)
        print(f"    log {RUN_DIR / 'services.log'}; the stream and the API wait for it")
    what = ("the UCI Online Retail data" if args.data == "retail"
            else f"a generated shop ({args.users:,} users, {args.items:,} items, {args.events:,} events)")
    with steps.step(f"load {what} into Delta ({settings.path(settings.storage.delta_root)})"):
        if args.data == "retail":
            path = Path(args.retail_path or RETAIL_PATH)
            if not path.exists():
                raise FileNotFoundError(f"no UCI Online Retail file at {path} (--retail-path FILE)")
        migration = migrate_airflow(running)  # Python only: it overlaps the load's JVM start and Spark work
        summary = load(args, running)
        wait_for_migration(migration)
    run_date = run_date_of(summary, args.run_date)

    def on_task_end(task: str) -> None:
        if task == START_AFTER_TASK:  # what is left (gate, publish) reads registry rows, not both cores
            wait_for_services(settings, services)
            start_stream_and_api(settings, procs)

    with steps.step(f"batch pipeline through Airflow: airflow dags test recsys_batch {run_date} "
                    f"({' -> '.join(DAG_TASKS)}{'' if args.maintain else f'; {SKIPPED_BY_DEFAULT} marked done'})"):
        airflow_run(run_date, args.maintain, running, on_task_end)
        version = published_version(settings, run_date, base)
    with steps.step("the streaming job (Kafka -> Delta bronze + Redis) and the API (granian)"):
        if "api" not in procs:
            wait_for_services(settings, services)
            start_stream_and_api(settings, procs)
        wait_for_api(procs, base)
    with steps.step("wait until the demo page works (page, reports, model, live stream)"):
        wait_for_page(settings, procs, base, version)
    state["ready_s"] = time.time() - steps.started
    print(f"\n    demo page ready in {state['ready_s']:.0f} s:  {base}/demo   (reports: {base}/reports)", flush=True)
    shopper = args.shopper or pick_shopper(base, args.data)
    with steps.step(f"live check: shopper {shopper}'s recommendations before and after three views"):
        live_check(settings, procs, base, shopper, args.k)
    if args.airflow_ui:
        with steps.step("Airflow UI (docker/local/airflow.sh up)"):
            if airflow_ui_running():
                print("    already running (not started by the demo: it stays up after Ctrl-C)")
            else:
                start_airflow_ui()
                state["airflow_ui"] = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(DATA_PROFILES), default="synthetic",
                        help="a generated shop (recent events) or the UCI Online Retail data (2010-12 .. 2011-12)")
    parser.add_argument("--users", type=int, default=2000, help="generated shop: users")
    parser.add_argument("--items", type=int, default=500, help="generated shop: items")
    parser.add_argument("--events", type=int, default=100_000, help="generated shop: events")
    parser.add_argument("--retail-path", default=None, help="the Online Retail parquet (default: load_data.py's)")
    parser.add_argument("--run-date", default=None, help="batch run date (default: last day of the loaded data)")
    parser.add_argument("--shopper", default=None, help="user shown before/after (default: u000042, or the "
                                                        "first shopper of the served model for retail)")
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--keep", action=argparse.BooleanOptionalAction,
                        default=os.environ.get(KEEP_VARIABLE, "1") not in ("0", "false", "no"),
                        help=f"keep the stream and API running until Ctrl-C (default; --no-keep or "
                             f"{KEEP_VARIABLE}=0 stops after the live check)")
    parser.add_argument("--maintain", action="store_true",
                        help=f"run the DAG's {SKIPPED_BY_DEFAULT} task too (by default it is marked successful "
                             f"without running: Delta OPTIMIZE + VACUUM, minutes on 2 cores)")
    parser.add_argument("--airflow-ui", action="store_true",
                        help="also start the Airflow UI (127.0.0.1:services.airflow_port) on the demo's data")
    args = parser.parse_args()
    for name, value in {**DATA_PROFILES[args.data], **DEMO_DEFAULTS}.items():
        os.environ.setdefault(name, value)  # before any settings are read; inherited by every child
    started = float(os.environ.get(T0_VARIABLE) or time.time())
    steps = Steps(total=6 + int(args.airflow_ui), started=started)
    procs: dict[str, subprocess.Popen] = {}
    running: list[subprocess.Popen] = []
    state: dict = {}

    def terminate(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    if time.time() - started > 1:
        print(f"make setup + make up took {time.time() - started:.1f}s")
    exit_code = 0
    try:
        demo(args, steps, procs, running, state)
        state["finished"] = True
        print(f"\nsteps:\n{steps.summary()}")
        if "ready_s" in state:
            print(f"demo page ready in {state['ready_s']:.0f} s (from the start of "
                  f"{'make demo' if os.environ.get(T0_VARIABLE) else 'the demo'})")
        if args.keep:
            base = f"http://{get_settings().serving.host}:{get_settings().serving.port}"
            print(f"\nrunning: open {base}/demo (reports: {base}/reports)"
                  + (f", Airflow UI http://127.0.0.1:{get_settings().services.airflow_port}"
                     if args.airflow_ui else "") + f"; logs in {RUN_DIR}. Ctrl-C stops everything.", flush=True)
            while all(p.poll() is None for p in procs.values()):
                time.sleep(1)
            dead = next(name for name, p in procs.items() if p.poll() is not None)
            log = RUN_DIR / f"{dead}.log"
            print(f"\nDEMO FAILED: the {dead} process exited with {procs[dead].returncode}; "
                  f"last lines of {log}:\n{tail(log)}", file=sys.stderr)
            exit_code = 1
        else:
            print(f"demo finished in {time.time() - started:.0f}s (--no-keep): stopping what it started")
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({str(exc) or 'SIGINT'}); stopping what the demo started", flush=True)
        exit_code = 0 if state.get("finished") else 130  # Ctrl-C after the page was up is the normal end
    except DemoError as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        if steps.done:
            print(f"steps that finished:\n{steps.summary()}", file=sys.stderr)
        exit_code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        for proc in running:
            stop(proc)
        for name in ("api", "stream"):
            if name in procs:
                stop(procs[name])
        if state.get("airflow_ui"):
            stop_airflow_ui()
        print("stopped: " + ", ".join([*procs, *(["Airflow UI"] if state.get("airflow_ui") else [])])
              if procs or state.get("airflow_ui") else "no stream or API was running", flush=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
