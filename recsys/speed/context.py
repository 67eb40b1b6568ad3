"""What executors need beside the events: the published model's factors and the catalogue.

Both are read with delta-rs by each Python worker and cached in the process, so a model is loaded
once per worker per version (not shipped from the driver every batch), and a newly published
version is picked up at the next batch that names it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from recsys.als.foldin import ItemFoldIn
from recsys.config import Settings
from recsys.contracts.tables import ITEMS
from recsys.speed.adjustments import ModelContext
from recsys.stores.model_store import DeltaModelStore, query_delta

log = logging.getLogger(__name__)
_lock = threading.Lock()
_model: tuple[str, ModelContext] | None = None  # (the model's table root, its context)
_catalogue: tuple[float, Mapping[str, tuple[str | None, str | None]]] | None = None


def model_context(settings: Settings, version: str | None) -> ModelContext | None:
    """The fold-in context of `version`, loaded on first use in this process."""
    global _model
    if version is None:
        return None
    root = settings.table_path("")
    with _lock:
        if _model is None or _model[0] != root or _model[1].version != version:
            model = DeltaModelStore(settings).load(version, extras=False)
            user_ids, user_factors = model.user_ids, model.user_factors

            def user_vector(user_id: str):
                row = user_ids.get(user_id)
                return None if row is None else user_factors[row]

            _model = (root, ModelContext(version, model.fold_in, user_vector,
                                         ItemFoldIn(model.user_factors)))
            log.info("speed layer folds into model %s (%d items)", version, len(model.item_ids))
        return _model[1]


def catalogue(settings: Settings) -> Mapping[str, tuple[str | None, str | None]]:
    """item_id -> (category, brand), reloaded every stream.catalogue_refresh_s."""
    global _catalogue
    with _lock:
        if _catalogue is None or time.monotonic() - _catalogue[0] >= settings.stream.catalogue_refresh_s:
            _catalogue = (time.monotonic(), _read_catalogue(settings))
        return _catalogue[1]


def _read_catalogue(settings: Settings) -> Mapping[str, tuple[str | None, str | None]]:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        rows = query_delta(DeltaTable(settings.table_path(ITEMS.name)), "SELECT item_id, category, brand FROM t")
    except TableNotFoundError:
        return {}
    return dict(zip(rows.column("item_id").to_pylist(),
                    zip(rows.column("category").to_pylist(), rows.column("brand").to_pylist(), strict=True),
                    strict=True))
