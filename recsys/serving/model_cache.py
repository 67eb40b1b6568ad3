"""Keep the current published model in memory and swap it atomically when a new one is published."""

from __future__ import annotations

import logging
import threading
import time

from recsys.stores.model_store import FactorModel, ModelStore

log = logging.getLogger(__name__)


class ModelCache:
    """Checks the registry at most every refresh_s seconds; a failed check keeps the model it has."""

    def __init__(self, store: ModelStore, refresh_s: float) -> None:
        self._store = store
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
                    self._model = self._store.load(version)  # a single reference swap
                    log.info("serving model %s (%d items)", version, len(self._model.item_ids))
                self.last_error = None
            except Exception as exc:  # any store failure: keep serving the model already loaded
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("model refresh failed, keeping %s: %s",
                            self._model.version if self._model else None, self.last_error)
