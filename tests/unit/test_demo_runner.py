"""`make demo`'s pieces that need no services: progress lines, Airflow task lines, steps, bars, choices."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import pytest

from recsys.demo import airflow_runner
from recsys.demo import runner as demo
from recsys.progress import parse_progress, progress_line, report

pytestmark = pytest.mark.unit


def test_progress_lines_round_trip_and_other_lines_are_log():
    assert parse_progress(progress_line(35, "starting Spark")) == (35.0, "starting Spark")
    assert parse_progress("26/11/28 10:00:01 INFO " + progress_line(101, "x")) == (100.0, "x")  # clamped
    assert parse_progress("26/11/28 10:00:01 INFO SparkContext: Running Spark version 4.2.0") is None
    assert parse_progress("@progress {not json") is None
    assert parse_progress('@progress {"what": "no pct"}') is None


def test_report_prints_one_flushed_line(capsys):
    report(15, "writing 500 items to Delta")
    assert parse_progress(capsys.readouterr().out) == (15.0, "writing 500 items to Delta")


def test_airflow_dag_test_lines_give_task_starts_and_ends():
    start = "2026-11-28T10:00:00Z [info] [DAG TEST] starting task_id=check map_index=-1 [airflow.sdk.definitions.dag]"
    end = "[2026-11-28 10:00:30] INFO - [DAG TEST] end task task_id=check map_index=-1"
    assert airflow_runner.airflow_task_event(start) == ("start", "check")
    assert airflow_runner.airflow_task_event(end) == ("end", "check")
    assert airflow_runner.airflow_task_event("[DAG TEST] running task <TaskInstance: recsys_batch.check>") is None
    marked = "INFO - [DAG TEST] Marking success for <Task(SparkSubmitOperator): maintain> on 2026-11-28 00:00:00+00:00"
    assert airflow_runner.airflow_task_event(marked) == ("marked", "maintain")


def test_the_demo_dag_run_skips_maintenance_unless_asked():
    assert airflow_runner.airflow_command("2011-12-09", maintain=False)[-4:] == [
        "test", "2011-12-09", "--mark-success-pattern", "maintain"]
    assert airflow_runner.airflow_command("2011-12-09", maintain=True)[-2:] == ["test", "2011-12-09"]
    assert demo.DAG_TASKS == ("check", "train", "sequence", "evaluate", "gate", "publish", "maintain")


def test_run_date_is_the_last_day_of_the_loaded_data_unless_given():
    summary = {"events": 10, "first_date": "2010-12-01", "last_date": "2011-12-09"}
    assert demo.run_date_of(summary, None) == "2011-12-09"
    assert demo.run_date_of(summary, "2011-12-31") == "2011-12-31"


def test_load_command_per_data_source():
    args = argparse.Namespace(data="synthetic", users=20, items=5, events=100, retail_path=None)
    assert demo.load_command(args)[-7:] == ["--progress", "--users", "20", "--items", "5", "--events", "100"]
    retail = demo.load_command(argparse.Namespace(data="retail", retail_path="/x.parquet"))
    assert retail[-5:] == ["--progress", "--source", "online-retail", "--path", "/x.parquet"]


def test_retail_has_its_own_lake_topic_and_redis_namespace():
    retail = demo.DATA_PROFILES["retail"]
    assert demo.DATA_PROFILES["synthetic"] == {}
    assert {"RECSYS__STORAGE__DELTA_ROOT", "RECSYS__STORAGE__CHECKPOINT_ROOT", "RECSYS__STORAGE__REPORTS_ROOT",
            "RECSYS__KAFKA__EVENTS_TOPIC", "RECSYS__REDIS__KEY_PREFIX"} <= set(retail)
    from recsys.config import load_settings

    settings = load_settings("local", environ=retail)  # the overrides are valid configuration
    assert settings.kafka.events_topic == "retail-events"


def test_a_failing_step_names_itself_and_finished_steps_are_timed(capsys):
    steps = demo.Steps(total=2, started=time.time())
    with steps.step("first"):
        pass
    with pytest.raises(demo.DemoError, match=r"step 2/2 'second' failed after .*s: boom"), steps.step("second"):
        raise ValueError("boom")
    assert [name for name, _ in steps.done] == ["first"]
    assert "[1/2] first" in capsys.readouterr().out
    assert "first" in steps.summary()


def test_bar_without_a_terminal_prints_a_line_per_change(capsys):
    bar = demo.Bar(6, "tasks", tty=False)
    bar.set(0, "task check")
    bar.set(0, "task check")  # no change, no line
    bar.set(1, "task check ended after 3.0s")
    bar.close()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 2
    assert lines[1].split()[1:] == ["1/6", "tasks", "task", "check", "ended", "after", "3.0s"]


def test_new_interest_prefers_a_fresh_category_with_items_the_model_knows():
    catalogue = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2", "b3", "b4", "b5"], "c": ["c1", "c2", "c3"]}
    assert demo.new_interest(catalogue, {"b1"}) == ("a", ["a1", "a2", "a3", "a4"])
    known = lambda ids: [i for i in ids if i not in {"a1", "a2"}]  # noqa: E731 - the model knows only some
    assert demo.new_interest(catalogue, {"b1"}, known) == ("c", ["c1", "c2", "c3"])


def test_run_logged_tees_lines_and_stop_leaves_no_process_of_the_group(tmp_path):
    seen: list[str] = []
    running: list[subprocess.Popen] = []
    code = demo.run_logged([sys.executable, "-c", "print('one'); print('two')"], tmp_path / "job.log",
                           seen.append, lambda: None, running)
    assert code == 0 and [s.strip() for s in seen] == ["one", "two"]
    assert (tmp_path / "job.log").read_text().split() == ["one", "two"]
    assert running == []
    proc = subprocess.Popen(["bash", "-c", "sleep 60 & sleep 60 & wait"], start_new_session=True)
    time.sleep(0.3)
    demo.stop(proc, timeout_s=5)
    deadline = time.monotonic() + 5  # killed children are reaped by init a moment later
    while (left := subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True)).returncode == 0 \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left.returncode == 1, left.stdout  # no member of the process group is left
