"""The batch DAG run by the demo: `airflow dags test` through docker/local/airflow.sh, a bar over its tasks."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable

from recsys.batch.stage_runner import DAG_STAGES
from recsys.config import PROJECT_ROOT
from recsys.demo.output import Bar
from recsys.demo.processes import RUN_DIR, run_logged, tail

AIRFLOW_SH = PROJECT_ROOT / "docker" / "local" / "airflow.sh"
DAG_TASKS = DAG_STAGES  # the tasks of dags/recsys_batch.py, in order
_DAG_TEST = re.compile(r"\[DAG TEST\] (?:(starting|end task) task_id=([\w.-]+)"
                       r"|(Marking success) for <Task\([^)]*\): ([\w.-]+)>)")
SKIPPED_BY_DEFAULT = "maintain"  # Delta OPTIMIZE + VACUUM: minutes on 2 cores, nothing the page needs (--maintain)


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


def airflow_run(run_date: str, maintain: bool, running: list[subprocess.Popen],
                on_task_end: Callable[[str], None] | None = None) -> None:
    """`airflow dags test recsys_batch <run_date>` through docker/local/airflow.sh, a bar over its tasks;
    on_task_end(task) is called as each task ends."""
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
            if on_task_end is not None:
                on_task_end(task)

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
