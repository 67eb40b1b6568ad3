"""Keep the current published model in memory and swap it atomically when a new one is published; and
fixed versions pinned by A/B variants.

`prepare` runs on every loaded version before it is served: serving passes recsys.stores.shared_model's
share_model, which swaps the version's arrays for read-only maps of one copy per machine, so a worker (and a
swap) holds no anonymous copy of the factors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from recsys.stores.model_store import FactorModel, ModelStore

log = logging.getLogger(__name__)
Prepare = Callable[[FactorModel], FactorModel]
# A worker with nothing to serve yet looks again this often (at most), whatever refresh_s says: the first version
# published after it started (a fresh deployment, the demo) is served within a second, not refresh_s later.
NO_MODEL_RECHECK_S = 1.0


def _as_loaded(model: FactorModel) -> FactorModel:
    return model


class ModelCache:
    """Checks the registry at most every refresh_s seconds; a failed check keeps the model it has.

    With `background`, a check after the first model runs on a thread of its own and the requests meanwhile get
    the model already served: reading a new version takes seconds (minutes at a million items, where the
    HNSW index is built), and a worker must not stall its requests for it. Only a worker with no model yet
    waits for one (warm() starts that read at worker start, before the first request asks)."""

    def __init__(self, store: ModelStore, refresh_s: float, prepare: Prepare = _as_loaded,
                 background: bool = False, on_swap: Callable[[], None] | None = None) -> None:
        self._store = store
        self._prepare = prepare
        self._on_swap = on_swap  # after each new version is served (recsys.serving.long_lived in the API)
        self._refresh_s = refresh_s
        self._background = background
        self._model: FactorModel | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def get(self) -> FactorModel | None:
        if self._model is None and self._lock.locked():
            with self._lock:  # the first read is under way (warm): wait for it rather than start another
                pass
        every = self._refresh_s if self._model is not None else min(self._refresh_s, NO_MODEL_RECHECK_S)
        if time.monotonic() - self._checked_at >= every:
            if self._background and self._model is not None:
                self._refresh_aside()
            else:
                self.refresh()
        return self._model

    def warm(self) -> None:
        """Read the current version on a thread now, so the first request finds it loaded; with none published
        yet, the thread looks again every NO_MODEL_RECHECK_S until one is, and reads it then."""
        threading.Thread(target=self._watch_for_first, name="model-warm", daemon=True).start()

    def _watch_for_first(self) -> None:
        while self._model is None:
            self.refresh()
            if self._model is None:
                time.sleep(NO_MODEL_RECHECK_S)

    def _refresh_aside(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # a check is already running; the model it replaces keeps serving
        self._checked_at = time.monotonic()  # no other request starts a check meanwhile
        threading.Thread(target=self._refresh_holding_lock, name="model-refresh", daemon=True).start()

    def _refresh_holding_lock(self) -> None:
        try:
            self._check()
        finally:
            self._lock.release()

    def refresh(self) -> None:
        with self._lock:
            self._check()

    def _check(self) -> None:
        self._checked_at = time.monotonic()
        try:
            version = self._store.current_version()
            if version is not None and (self._model is None or self._model.version != version):
                self._model = self._prepare(self._store.load(version))  # a single reference swap
                log.info("serving model %s (%d items)", version, len(self._model.item_ids))
                if self._on_swap is not None:
                    self._on_swap()
            self.last_error = None
        except Exception as exc:  # any store failure: keep serving the model already loaded
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("model refresh failed, keeping %s: %s",
                        self._model.version if self._model else None, self.last_error)


class PinnedModel:
    """A fixed model version (an A/B variant's `model_version`), loaded on first use and kept.

    A version that cannot be loaded (not registered, no factors, the store down) is not served: the
    current model is served instead, and the failure is logged once; this process does not try again.
    """

    def __init__(self, store: ModelStore, version: str, current: Callable[[], FactorModel | None],
                 prepare: Prepare = _as_loaded) -> None:
        self._store = store
        self._prepare = prepare
        self.version = version
        self._current = current
        self._model: FactorModel | None = None
        self._tried = False
        self._lock = threading.Lock()

    def __call__(self) -> FactorModel | None:
        if not self._tried:
            with self._lock:
                if not self._tried:
                    self._model = self._load()
                    self._tried = True
        return self._model if self._model is not None else self._current()

    def _load(self) -> FactorModel | None:
        try:
            model = self._prepare(self._store.load(self.version))
        except Exception as exc:  # any failure: the pin is ignored, the variant gets the current model
            log.warning("pinned model %s cannot be served (%s: %s); its variant gets the current model",
                        self.version, type(exc).__name__, exc)
            return None
        log.info("serving pinned model %s (%d items)", self.version, len(model.item_ids))
        return model
