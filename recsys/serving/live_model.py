"""The served model with the live catalogue and the live item vectors laid over the batch model.

Each worker polls Redis (recsys.stores.live_catalogue) every serving.catalogue_poll_s: one GET of the
catalogue version and of the live-vector counter of the served model version. When either moved it reads the
changes and rebuilds the served model once (a reference swap, like a model load, but without reading Delta):

- attributes (category, brand, price, available, blocked) are the live ones, so filters use them;
- an item created through the API gets a content profile at once (recsys.serving.content_vector), so it
  ranks as a new item ("new, like X") and has content neighbours under similar items;
- an item the speed layer folded a vector in for joins the factor rows: the factors, recent and item-to-item
  signals and the candidate pools see it. Vectors are kept per model version: when the next batch model is
  served, its own factors supersede them (the new version's key starts empty), with no restart.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np
import redis
from scipy import sparse

from recsys.config import ContentConfig
from recsys.serving.content_vector import content_rows, item_tokens, price_band, price_edges
from recsys.stores.attribute_arrays import ItemCatalogue
from recsys.stores.live_catalogue import LiveCatalogueStore
from recsys.stores.model_store import ContentProfiles, FactorModel

log = logging.getLogger(__name__)


class LiveModel:
    """A model provider (what Recommender takes): the batch model of `model()` with the live overlay."""

    def __init__(self, model: Callable[[], FactorModel | None], store: LiveCatalogueStore, poll_s: float,
                 content: ContentConfig) -> None:
        self._model, self._store, self._poll_s, self._content = model, store, poll_s, content
        self._lock = threading.Lock()
        self._polled_at = float("-inf")
        self._catalogue_version = 0
        self._rows: dict[str, dict] = {}  # every live catalogue change, item_id -> row
        self._vectors: tuple[str | None, int, dict[str, np.ndarray]] = (None, 0, {})  # (version, count, vectors)
        self._built: tuple[tuple, FactorModel] | None = None
        self.last_error: str | None = None

    def __call__(self) -> FactorModel | None:
        base = self._model()
        if base is None:
            return None
        if time.monotonic() - self._polled_at >= self._poll_s:
            self.poll(base)
        key = (id(base), self._catalogue_version, self._vectors[0], self._vectors[1])
        built = self._built
        if built is not None and built[0] == key:
            return built[1]
        with self._lock:
            if self._built is None or self._built[0] != key:
                self._built = (key, overlay(base, self._rows, self._vectors[2] if self._vectors[0] == base.version
                                            else {}, self._content))
            return self._built[1]

    def poll(self, base: FactorModel) -> None:
        """Read what changed since the last poll; a Redis failure keeps what this worker has."""
        with self._lock:
            self._polled_at = time.monotonic()
            try:
                catalogue, count = self._store.versions(base.version)
                if catalogue > self._catalogue_version:
                    changes = self._store.changes_since(self._catalogue_version)
                    for item, row in changes.rows.items():
                        self._rows[item] = row
                    self._catalogue_version = max(changes.version, self._catalogue_version)
                if (base.version, count) != self._vectors[:2]:
                    vectors = self._store.item_vectors(base.version, base.item_factors.shape[1])
                    self._vectors = (base.version, count, vectors)
                self.last_error = None
            except redis.RedisError as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("live catalogue poll failed, keeping version %d: %s", self._catalogue_version, exc)

    def live_item_vectors(self, version: str) -> tuple[list[str], np.ndarray]:
        """(ids, matrix) of the live item vectors served with model `version` (items its batch factors lack),
        for a candidate stage that indexes the item factors: the rows the served model appended."""
        model = self()
        if model is None or model.version != version or model.live_items == 0:
            return [], np.zeros((0, 0), dtype=np.float32)
        return model.item_ids[-model.live_items:], model.item_factors[-model.live_items:]


def overlay(base: FactorModel, rows: Mapping[str, Mapping], vectors: Mapping[str, np.ndarray],
            cfg: ContentConfig) -> FactorModel:
    """`base` with the live catalogue rows and item vectors laid over it (itself when there are none)."""
    if not rows and not vectors:
        return base
    known = base.catalogue.row if base.catalogue is not None else None
    if all(item in base.all_index for item in rows) and all(item in base.item_index for item in vectors):
        return _with_attributes(base, rows, known)
    # Without a catalogue every model item is served: the live rows add to them, they do not replace them.
    catalogue = (base.catalogue or ItemCatalogue(base.all_item_ids, base.attributes)).with_rows(rows)
    content = _with_new_profiles(base, rows, catalogue, cfg)
    live = sorted(item for item in vectors if item not in base.item_index and item in catalogue.row)
    changes: dict = {"catalogue": catalogue, "content": content}
    if live:
        matrix = np.asarray([vectors[item] for item in live], dtype=np.float32).reshape(len(live), -1)
        changes.update(item_ids=[*base.item_ids, *live], item_factors=np.vstack([base.item_factors, matrix]),
                       live_items=len(live),
                       popularity=np.concatenate([np.asarray(base.popularity, dtype=np.float32),
                                                  np.zeros(len(live), dtype=np.float32)]))
    return dataclasses.replace(base, **changes)


def _with_attributes(base: FactorModel, rows: Mapping[str, Mapping], known: Mapping[str, int] | None) -> FactorModel:
    """Changes to items the model already ranks only: `base` with its attribute arrays patched at those rows,
    without rebuilding its lookups: a full rebuild walks every item id, this costs the array copies."""
    changes = {base.all_index[item]: row for item, row in rows.items()}
    listed = frozenset(base.all_index[item] for item in rows if known is not None and item not in known)
    model = copy.copy(base)
    object.__setattr__(model, "attributes", base.attributes.patched(changes, listed=listed))
    return model


def _with_new_profiles(base: FactorModel, rows: Mapping[str, Mapping], catalogue: ItemCatalogue,
                       cfg: ContentConfig) -> ContentProfiles | None:
    """The batch profiles plus one for each live item the model knows nothing of (no factors, no profile)."""
    known = base.content.row if base.content is not None else {}
    new = sorted(item for item in rows if item not in known and item not in base.item_index)
    if not new:
        return base.content
    attributes = catalogue.attributes
    edges = price_edges(attributes.price, cfg.price_bands)
    tokens = []
    for item in new:
        i = catalogue.row[item]
        tokens.append(item_tokens(rows[item].get("title"), attributes.category_of(i), attributes.brand_of(i),
                                  price_band(float(attributes.price[i]), edges), cfg.min_token_length))
    profiles = content_rows(tokens, cfg.num_features)
    if base.content is None:
        return ContentProfiles(new, profiles)
    return ContentProfiles([*base.content.item_ids, *new], sparse.vstack([base.content.matrix, profiles]).tocsr())
