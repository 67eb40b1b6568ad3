"""Rollback: make a registered model version current again (one atomic registry commit, delta-rs).

python spark_jobs/activate_model.py --version 2026-11-27.1   (make rollback VERSION=...)

Like the admin endpoint, it activates only an approved or published version (never one the gate refused).
"""

from __future__ import annotations

import argparse

from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.stores.registry_store import activate_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="a model_version from the model_registry table")
    parser.add_argument("--env", default=None)
    args = parser.parse_args()
    setup_logging()
    settings = get_settings(args.env)
    before, current = activate_version(settings, args.version)
    print(f"current model: {before} -> {current}")


if __name__ == "__main__":
    main()
