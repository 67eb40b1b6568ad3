"""Zip the shared package for `--py-files`, so executors on a cluster can import recsys.

In local mode executors find recsys in the virtual environment anyway; the zip makes the same
spark-submit command work on a cluster whose nodes only have pyspark and the pinned libraries.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from recsys.config import PROJECT_ROOT

PACKAGE_ZIP = PROJECT_ROOT / ".local" / "dist" / "recsys.zip"


def build_package_zip(dest: Path = PACKAGE_ZIP) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((PROJECT_ROOT / "recsys").rglob("*.py")):
            archive.write(path, path.relative_to(PROJECT_ROOT))
    tmp.replace(dest)
    return dest


if __name__ == "__main__":
    print(build_package_zip())
