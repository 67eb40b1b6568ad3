"""spark-submit arguments from configuration, so Make, Airflow and users submit jobs the same way."""

from __future__ import annotations

import argparse
import shlex

from recsys.config import PROJECT_ROOT, Settings, load_settings
from recsys.spark.session import base_conf, connector_jars


def submit_args(settings: Settings, include_master: bool = True) -> list[str]:
    """Arguments between `spark-submit` and the job file: master, connector jars, conf, package zip."""
    args = ["--master", settings.spark.master] if include_master else []
    jars = connector_jars(settings)
    args += ["--jars", ",".join(jars)] if jars else ["--packages", ",".join(settings.spark.packages)]
    args += ["--driver-memory", settings.spark.driver_memory]
    for key, value in base_conf(settings).items():
        args += ["--conf", f"{key}={value}"]
    args += ["--conf", f"spark.executorEnv.RECSYS_ENV={settings.env}"]
    return args


def package_zip() -> str:
    """The zip of the shared package shipped to executors with --py-files (built by `make package`)."""
    return str(PROJECT_ROOT / ".local" / "dist" / "recsys.zip")


def main() -> None:
    parser = argparse.ArgumentParser(description="print spark-submit arguments for this environment")
    parser.add_argument("--env", default=None)
    args = parser.parse_args()
    print(shlex.join(submit_args(load_settings(args.env))))


if __name__ == "__main__":
    main()
