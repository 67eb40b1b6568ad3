"""Run a Spark job with spark-submit, configured from conf/: `python -m recsys.spark.submit JOB [ARGS]`.

Make targets and users submit jobs this way; Airflow passes the same settings to SparkSubmitOperator.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from recsys.config import PROJECT_ROOT, Settings, get_settings
from recsys.spark.conf import driver_env, python_executable, submit_args
from recsys.spark.package import build_package_zip


def spark_home() -> str:
    """SPARK_HOME if set (a cluster install), else the pyspark package's own distribution."""
    import pyspark

    return os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)


def submit_command(settings: Settings, argv: list[str],
                   extra_conf: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The spark-submit command line and environment of a job: argv is the job file and its arguments;
    extra_conf settings come after (and so win over) the configured ones."""
    build_package_zip()
    home = spark_home()
    # An operator's own BLAS thread variables win over the configured limit.
    env = {**driver_env(settings), **os.environ, "SPARK_HOME": home,
           "PYSPARK_PYTHON": python_executable(settings), "RECSYS_ENV": settings.env,
           "RECSYS_HOME": str(PROJECT_ROOT)}
    extra = [arg for key, value in (extra_conf or {}).items() for arg in ("--conf", f"{key}={value}")]
    return [str(Path(home) / "bin" / "spark-submit"), *submit_args(settings), *extra, *argv], env


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m recsys.spark.submit JOB.py [JOB ARGS...]")
    command, env = submit_command(get_settings(), argv)
    print(f"spark-submit: {shlex.join(command[:3])} ... {shlex.join(argv)}", file=sys.stderr, flush=True)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
