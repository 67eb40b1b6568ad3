"""`make demo`: the whole product on one machine, each step timed, until Ctrl-C.

Checks Redis and Kafka (starts them if they are down), loads a generated shop or the UCI Online Retail
data into Delta, runs the batch DAG through Airflow (`airflow dags test recsys_batch <run date>`, the run
date being the last day of the loaded data), starts the streaming job and the API, waits until the demo
page serves the published model with a live stream, prints the page's address, shows one shopper's
recommendations change after a few new events, and keeps running until Ctrl-C. Ctrl-C (or SIGTERM, or
the end with --no-keep) stops everything the demo started, each in its own process group.

The retail data has its own lake, topic and Redis namespace (DATA_PROFILES), so the two shops never mix.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests
from deltalake import DeltaTable
from tqdm import tqdm

from recsys.config import PROJECT_ROOT, Settings, get_settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import ITEMS
from recsys.data.online_retail import DEFAULT_PATH as RETAIL_PATH
from recsys.kafka.topics import ensure_topics
from recsys.ops.progress import parse_progress
from recsys.stores.model_store import DeltaModelStore, query_delta
from recsys.stores.online_store import RedisOnlineStore

RUN_DIR = PROJECT_ROOT / ".local" / "run"
AIRFLOW_SH = PROJECT_ROOT / "docker" / "local" / "airflow.sh"
SERVICES_SH = PROJECT_ROOT / "docker" / "local" / "services.sh"
DAG_TASKS = ("check", "train", "evaluate", "gate", "publish", "maintain")  # dags/recsys_batch.py
POLL_S = 0.1
T0_VARIABLE = "RECSYS_DEMO_T0"  # epoch seconds `make demo` started at (before setup and up); set by the Makefile
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
    "RECSYS__AIRFLOW__RETRIES": "0",  # fail fast under `airflow dags test` instead of retrying for minutes
}
_DAG_TEST = re.compile(r"\[DAG TEST\] (?:(starting|end task) task_id=([\w.-]+)"
                       r"|(Marking success) for <Task\([^)]*\): ([\w.-]+)>)")
SKIPPED_BY_DEFAULT = "maintain"  # Delta OPTIMIZE + VACUUM: minutes on 2 cores, nothing the page needs (--maintain)


class DemoError(RuntimeError):
    """A demo step failed; the message says which, why and where its log is."""


# ---------------------------------------------------------------------------------------------- steps


@dataclass
class Steps:
    """Numbered, timed steps; a failure names its step."""

    total: int
    started: float  # time.time() the demo started (make demo's start when known)
    done: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        number = len(self.done) + 1
        print(f"\n[{number}/{self.total}] {name}", flush=True)
        began = time.monotonic()
        try:
            yield
        except (DemoError, KeyboardInterrupt):
            raise
        except Exception as exc:  # any failure becomes the step's failure
            raise DemoError(f"step {number}/{self.total} '{name}' failed after "
                            f"{time.monotonic() - began:.1f}s: {exc}") from exc
        seconds = time.monotonic() - began
        self.done.append((name, seconds))
        print(f"    done in {seconds:.1f}s (demo at {time.time() - self.started:.0f}s)", flush=True)

    def summary(self) -> str:
        return "\n".join(f"    {seconds:7.1f}s  {name}" for name, seconds in self.done)


class Bar:
    """A tqdm bar on a terminal; elsewhere (a log, a CI job) a plain line per change of what is done."""

    def __init__(self, total: float, unit: str, tty: bool | None = None) -> None:
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.started = time.monotonic()
        self.what = ""
        self.done = 0.0
        self.total, self.unit = total, unit
        width = min(shutil.get_terminal_size((100, 24)).columns, 120)  # a pty may report 0 columns: no bar
        self._bar = tqdm(total=total, unit=unit, file=sys.stdout, disable=not self.tty, ncols=width, desc=" " * 48,
                         bar_format="    {desc} |{bar}| {n:.0f}/{total:.0f} {unit} [{elapsed}]")

    def set(self, done: float, what: str) -> None:
        if done != self.done:
            self._bar.update(done - self.done)
            self.done = done
        if what != self.what:
            self.what = what
            self._bar.set_description_str(what[:48].ljust(48))
            if not self.tty:
                print(f"    {time.monotonic() - self.started:6.1f}s  {self.done:5.0f}/{self.total:.0f} "
                      f"{self.unit}  {what}", flush=True)

    def note(self, text: str) -> None:
        if self.tty:
            self._bar.write(f"    {text}", file=sys.stdout)
        else:
            print(f"    {time.monotonic() - self.started:6.1f}s  {text}", flush=True)

    def tick(self) -> None:
        self._bar.refresh()  # the elapsed time moves while a phase runs

    def close(self) -> None:
        self._bar.close()


# ------------------------------------------------------------------------------------------ processes


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM the process's whole group (it leads its own session), SIGKILL what is left after timeout_s."""
    if proc.poll() is not None:
        _kill_group(proc.pid, signal.SIGKILL)  # children that outlived their leader
        return
    _kill_group(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout_s)
    _kill_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _kill_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_logged(command: list[str], log: Path, on_line: Callable[[str], None], tick: Callable[[], None],
               running: list[subprocess.Popen], env: dict[str, str] | None = None) -> int:
    """Run a job in its own process group to completion: every line goes to `log` and to on_line."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", bufsize=1, cwd=PROJECT_ROOT, start_new_session=True,
                                env={**os.environ, **(env or {})})
        running.append(proc)
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            while (line := _next_line(lines, tick)) is not None:
                out.write(line)
                out.flush()
                on_line(line)
            return proc.wait()
        finally:
            if proc.poll() is None:
                print(f"    stopping {log.stem} (process group {proc.pid})", flush=True)
            stop(proc)
            running.remove(proc)


def _next_line(lines: queue.Queue, tick: Callable[[], None]) -> str | None:
    while True:
        try:
            return lines.get(timeout=0.5)
        except queue.Empty:
            tick()


def tail(log: Path, n: int = 15) -> str:
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(f"      | {line}" for line in text[-n:])


def start_background(name: str, command: list[str]) -> subprocess.Popen:
    log = (RUN_DIR / f"{name}.log").open("w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                            start_new_session=True)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, procs: dict[str, subprocess.Popen]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        for name, proc in procs.items():
            if proc.poll() is not None:
                log = RUN_DIR / f"{name}.log"
                raise RuntimeError(f"the {name} process exited with {proc.returncode} while waiting for {what}; "
                                   f"last lines of {log}:\n{tail(log)}")
        if check():
            return time.monotonic() - started
        time.sleep(POLL_S)
    raise TimeoutError(f"{what} not seen within {timeout_s:.0f}s; logs in {RUN_DIR}")


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0


# ----------------------------------------------------------------------------------------- the steps


def services_ready(settings: Settings) -> str | None:
    """None when Redis answers and Kafka has this profile's topics (created here if missing), else why not."""
    try:
        redis.Redis.from_url(settings.redis.url, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at {settings.redis.url}: {exc}"
    try:
        created = ensure_topics(settings, timeout_s=10)
    except Exception as exc:  # KafkaUnavailableError, or any other broker error: not ready
        return f"Kafka at {settings.kafka.bootstrap_servers}: {exc}"
    if created:
        print(f"    created topics {', '.join(created)}")
    return None


def ensure_services(settings: Settings) -> None:
    problem = services_ready(settings)
    if problem is None:
        print(f"    Redis ({settings.redis.url}) and Kafka ({settings.kafka.bootstrap_servers}) are up; "
              f"topic {settings.kafka.events_topic}")
        return
    log = RUN_DIR / "services.log"
    print(f"    not ready ({problem}); starting them: docker/local/services.sh up (log {log})")
    with log.open("w") as out:
        code = subprocess.call(["bash", str(SERVICES_SH), "up"], stdout=out, stderr=subprocess.STDOUT,
                               cwd=PROJECT_ROOT)
    problem = services_ready(settings) if code == 0 else f"services.sh up exited with {code}"
    if problem is not None:
        raise RuntimeError(f"{problem}; last lines of {log}:\n{tail(log)}")


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


def airflow_task_event(line: str) -> tuple[str, str] | None:
    """("start" | "end" | "marked", task id) of an `airflow dags test` log line that starts or ends a task,
    or marks it successful without running it (--mark-success-pattern)."""
    found = _DAG_TEST.search(line)
    if found is None:
        return None
    if found.group(3):
        return "marked", found.group(4)
    return ("start" if found.group(1) == "starting" else "end"), found.group(2)


def airflow_command(run_date: str, maintain: bool) -> list[str]:
    skip = [] if maintain else ["--mark-success-pattern", SKIPPED_BY_DEFAULT]
    return ["bash", str(AIRFLOW_SH), "test", run_date, *skip]


def airflow_run(run_date: str, maintain: bool, running: list[subprocess.Popen]) -> None:
    """`airflow dags test recsys_batch <run_date>` through docker/local/airflow.sh, a bar over its tasks."""
    log = RUN_DIR / "airflow.log"
    bar = Bar(len(DAG_TASKS), "tasks")
    bar.set(0, "Airflow: migrate DB (first run), parse the DAG")
    current: dict[str, float] = {}

    def on_line(line: str) -> None:
        if (event := airflow_task_event(line)) is None:
            return
        kind, task = event
        if kind == "marked":
            bar.set(bar.done + 1, f"task {task} marked successful without running (--maintain runs it)")
        elif kind == "start":
            current[task] = time.monotonic()
            bar.set(bar.done, f"task {task} (spark-submit spark_jobs/batch.py {task})")
        else:
            ended = f"task {task} ended after {time.monotonic() - current.pop(task, time.monotonic()):.1f}s"
            if bar.tty:
                bar.note(ended)  # keeps each task's time above the bar
            bar.set(bar.done + 1, ended)

    try:  # the [DAG TEST] lines the bar follows are logged at INFO
        code = run_logged(airflow_command(run_date, maintain), log, on_line, bar.tick, running,
                          env={"AIRFLOW_LOG_LEVEL": "INFO"})
    finally:
        bar.close()
    if code != 0:
        where = f"in task '{next(iter(current))}'" if current else "before any task started"
        raise RuntimeError(f"airflow dags test recsys_batch {run_date} failed {where} (exit {code}); "
                           f"last lines of {log}:\n{tail(log, 25)}")
    if bar.done < len(DAG_TASKS):  # e.g. a logical date before the DAG's start_date: a run without tasks
        raise RuntimeError(f"airflow dags test recsys_batch {run_date} ran {bar.done:.0f} of {len(DAG_TASKS)} "
                           f"tasks; see {log}")


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


def start_stream_and_api(settings: Settings, procs: dict[str, subprocess.Popen], base: str) -> None:
    host, port = settings.serving.host, settings.serving.port
    if not port_free(host, port):
        raise RuntimeError(f"{host}:{port} is already taken (a `make serve` or an earlier demo still running?)")
    procs["stream"] = start_background("stream", [sys.executable, "-m", "recsys.spark.submit",
                                                  "spark_jobs/stream.py"])
    procs["api"] = start_background("api", [str(PROJECT_ROOT / ".venv" / "bin" / "gunicorn"), "--config",
                                            "api/gunicorn_conf.py", "api.wsgi:app"])
    print(f"    stream (pid {procs['stream'].pid}, log {RUN_DIR / 'stream.log'}), "
          f"API (pid {procs['api'].pid}, log {RUN_DIR / 'api.log'})")
    took = wait_until(lambda: http_ok(f"{base}/healthz"), 90, "API /healthz", procs)
    print(f"    API answers /healthz after {took:.1f}s")


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


def airflow_ui_running() -> bool:
    return subprocess.call(["bash", str(AIRFLOW_SH), "status"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT) == 0


def start_airflow_ui() -> None:
    log = RUN_DIR / "airflow-ui.log"
    with log.open("w") as out:
        code = subprocess.call(["bash", str(AIRFLOW_SH), "up"], stdout=out, stderr=subprocess.STDOUT,
                               cwd=PROJECT_ROOT)
    if code != 0:
        raise RuntimeError(f"docker/local/airflow.sh up exited with {code}; last lines of {log}:\n{tail(log)}")


def stop_airflow_ui() -> None:
    subprocess.call(["bash", str(AIRFLOW_SH), "down"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    cwd=PROJECT_ROOT)


# ------------------------------------------------------------------------------------ shopper helpers


def items_by_category(settings: Settings) -> dict[str, list[str]]:
    table = DeltaTable(settings.table_path(ITEMS.name))
    rows = query_delta(table, "SELECT item_id, category FROM t ORDER BY item_id")
    out: dict[str, list[str]] = {}
    for row in rows.to_pylist():
        out.setdefault(row["category"], []).append(row["item_id"])
    return out


def known_items(base: str) -> Callable[[list[str]], list[str]]:
    """Of some item ids, those the served model ranks (GET /v1/items leaves the others out)."""
    def known(ids: list[str]) -> list[str]:
        cards = requests.get(f"{base}/v1/items", params={"ids": ",".join(ids[:100])}, timeout=5).json()
        return [card["item_id"] for card in cards.get("items", [])]
    return known


def show(title: str, recs: dict) -> None:
    print(f"    {title} (model {recs['model_version']}, degraded={recs['degraded']}):")
    for rank, item in enumerate(recs["items"], 1):
        print(f"      {rank:2d}. {item['item_id']:<10} {item['score']:7.3f}  {'; '.join(item['reasons'])}")


def get_recommendations(base: str, user: str, k: int) -> dict:
    return requests.get(f"{base}/v1/users/{user}/recommendations?k={k}", timeout=5).json()


def item_ids(recs: dict) -> list[str]:
    return [i["item_id"] for i in recs["items"]]


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
    with steps.step("Redis and Kafka"):
        ensure_services(settings)
    what = ("the UCI Online Retail data" if args.data == "retail"
            else f"a generated shop ({args.users:,} users, {args.items:,} items, {args.events:,} events)")
    with steps.step(f"load {what} into Delta ({settings.path(settings.storage.delta_root)})"):
        if args.data == "retail":
            path = Path(args.retail_path or RETAIL_PATH)
            if not path.exists():
                raise FileNotFoundError(f"no UCI Online Retail file at {path} (--retail-path FILE)")
        summary = load(args, running)
    run_date = run_date_of(summary, args.run_date)
    with steps.step(f"batch pipeline through Airflow: airflow dags test recsys_batch {run_date} "
                    f"({' -> '.join(DAG_TASKS)}{'' if args.maintain else f'; {SKIPPED_BY_DEFAULT} marked done'})"):
        airflow_run(run_date, args.maintain, running)
        version = published_version(settings, run_date, base)
    with steps.step("start the streaming job (Kafka -> Delta bronze + Redis) and the API (gunicorn)"):
        start_stream_and_api(settings, procs, base)
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
