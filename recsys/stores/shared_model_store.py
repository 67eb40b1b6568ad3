"""A ModelStore for serving: each version is read from Delta in a child process and served from the machine's
one mapped copy (recsys.stores.shared_model).

Reading a version from Delta builds every array, id list and dict of it in the reader (about 900 MB of
anonymous memory at a million items x 64). In an API worker that memory stays with the worker after the
version is mapped: the allocators keep what was freed between objects that are still alive (measured: a
worker held about 100 MB more than its live objects). It also doubles the worker during a swap, while the old
version is still served. Read by a short-lived child instead, it is all returned when the child exits: the
worker only maps the folder the child wrote (or found: a version another worker wrote is not read again).

    python -m recsys.stores.shared_model_store VERSION   # the child: settings pickled on stdin, folder on stdout
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import time
from pathlib import Path

import recsys
from recsys.config import Settings
from recsys.logging_setup import setup_logging
from recsys.stores.model_store import DeltaModelStore, FactorModel
from recsys.stores.shared_model import attach, file_lock, version_folder_prefix, write_shared

log = logging.getLogger(__name__)
_PROJECT = Path(recsys.__file__).resolve().parents[1]


class VersionLoadError(RuntimeError):
    """The child process could not read or write a version; its last log lines say why."""


class SharedModelStore:
    """ModelStore: current_version from the registry, load through a child process and the mapped folder."""

    def __init__(self, settings: Settings, store: DeltaModelStore | None = None) -> None:
        self._settings = settings
        self._store = store or DeltaModelStore(settings)

    def current_version(self) -> str | None:
        return self._store.current_version()

    def registry(self) -> list[dict]:
        return self._store.registry()

    def load(self, version: str, extras: bool = True) -> FactorModel:
        if not extras:  # only the factors: small enough to read here (the speed layer's path)
            return self._store.load(version, extras=False)
        started = time.monotonic()
        folder = self._write_in_child(version)
        model = attach(folder, self._settings.serving.retrieval, self._store.sequence(version))
        log.info("model %s mapped from %s in %.1f s", version, folder.name, time.monotonic() - started)
        return model

    def _write_in_child(self, version: str) -> Path:
        done = subprocess.run([sys.executable, "-m", __name__, version], input=pickle.dumps(self._settings),
                              capture_output=True, cwd=_PROJECT, check=False)
        errors = done.stderr.decode(errors="replace").strip().splitlines()
        for line in errors:  # the child's own log lines, in this worker's log
            log.log(logging.INFO if done.returncode == 0 else logging.WARNING, "model reader: %s", line)
        if done.returncode != 0:
            reason = errors[-1] if errors else "no message"
            raise VersionLoadError(f"reading model {version} failed (exit {done.returncode}): {reason}")
        return Path(done.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    settings: Settings = pickle.loads(sys.stdin.buffer.read())
    setup_logging()
    version = sys.argv[1]
    cfg = settings.serving.retrieval
    root = Path(settings.path(cfg.cache_dir))
    # One reader of a version at a time on this machine: workers swapping together do not each hold a version's
    # worth of Delta reads at once (the second finds the folder written and only checks its fingerprint).
    try:
        with file_lock(root / f"{version_folder_prefix(version)}.read.lock"):
            folder = write_shared(DeltaModelStore(settings).load(version), cfg, root)
    except Exception as exc:  # any failure: one line for the worker's error, the traceback in its log
        log.exception("reading model %s failed", version)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    print(folder)


if __name__ == "__main__":
    main()
