"""Warm-up job of the driver's class archive: `python -m recsys.spark.class_archive_build` submits it with
-XX:ArchiveClassesAtExit, so the classes the stages use are dumped when it exits (recsys.spark.class_archive_build).

spark_jobs/warm_classes.py SCRATCH_DIR
"""

from __future__ import annotations

import sys

from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.spark.class_archive_build import exercise
from recsys.spark.session import get_spark

if __name__ == "__main__":
    setup_logging()
    print(f"warm-up read back {exercise(get_spark(get_settings(), 'warm-classes'), sys.argv[1])} rows")
