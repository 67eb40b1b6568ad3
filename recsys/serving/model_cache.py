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


def _as_loaded(model: FactorModel) -> FactorModel:
    return model


class ModelCache:
    """Checks the registry at most every refresh_s seconds; a failed check keeps the model it has."""

    def __init__(self, store: ModelStore, refresh_s: float, prepare: Prepare = _as_loaded) -> None:
        self._store = store
        self._prepare = prepare
        self._refresh_s = refresh_s
        self._model: FactorModel | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def get(self) -> FactorModel | None:
        if time.monotonic() - self._checked_at >= self._refresh_s:
            self.refresh()
        return self._model

    def refresh(self) -> None:
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                version = self._store.current_version()
                if version is not None and (self._model is None or self._model.version != version):
                    self._model = self._prepare(self._store.load(version))  # a single reference swap
                    log.info("serving model %s (%d items)", version, len(self._model.item_ids))
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
