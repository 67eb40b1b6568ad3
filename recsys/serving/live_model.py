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
from recsys.stores.attribute_arrays import AttributeArrays
from recsys.stores.grown_index import GrownIds, GrownIndex
from recsys.stores.live_catalogue import LiveCatalogueStore
from recsys.stores.model_store import NORM_FLOOR, ContentProfiles, FactorModel
from recsys.stores.retrieval_index import Ragged, RetrievalIndex
from recsys.stores.row_stack import RowStack
from recsys.stores.shared_model import grown_rows

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
    return _grown(base, rows, vectors, cfg, known)


def _grown(base: FactorModel, rows: Mapping[str, Mapping], vectors: Mapping[str, np.ndarray],
           cfg: ContentConfig, known: Mapping[str, int] | None) -> FactorModel:
    """`base` grown by the items it lacks, laid out as a model built with them would be: the live vectors' items
    join the factor rows after the batch ones, new catalogue items the new items after the batch ones.

    Only what changed is built. The lookups grow over the base's (GrownIndex), the factors and norms are written
    in the spare rows of the machine's shared files (shared_model.grown_rows), and the per-item arrays are copied
    once: a million-item model grows in milliseconds, not by rebuilding every lookup (bench/live_overlay.py)."""
    n, n_tail = base.n_items, len(base.all_item_ids) - base.n_items
    # Without a catalogue every model item is served: the live rows add to them, they do not replace them.
    live = sorted(item for item in vectors if item not in base.item_index and (item in rows or item in base.all_index))
    profiled = base.content.row if base.content is not None else {}
    new = sorted(item for item in rows if item not in profiled and item not in base.item_index)
    live_set = frozenset(live)
    moved = np.asarray([base.all_index[i] - n for i in live if i in base.all_index], dtype=np.int64)
    kept = np.ones(n_tail, dtype=bool)
    kept[moved] = False
    added = [item for item in new if item not in live_set]  # new items without a live vector
    first_new = n + len(live) + int(kept.sum())
    all_item_ids = GrownIds(base.all_item_ids, n, live, n + np.flatnonzero(kept) if moved.size else None, added)
    extra = {item: n + j for j, item in enumerate(live)} | {item: first_new + j for j, item in enumerate(added)}
    remap = None
    if moved.size:  # the batch new items after a moved one move up; those before it still move past the live rows
        remap = np.empty(n_tail, dtype=np.int64)
        remap[kept] = n + len(live) + np.arange(first_new - n - len(live))
        remap[moved] = [extra[base.all_item_ids[n + m]] for m in moved.tolist()]
    elif live:
        remap = np.arange(n + len(live), n + len(live) + n_tail, dtype=np.int64)
    all_index = GrownIndex(base.all_index, extra, n, remap)
    attributes = _grown_attributes(base, rows, all_index, live, kept, added, known)
    model = copy.copy(base)
    model.__dict__.pop("fold_in", None)  # over the grown factors, built on first use
    # The base's rows of the similar-items and sequence vocabularies, moved; a vocabulary item the base lacked
    # may be one it gained (the sequence model's rows count from 1: 0 is its padding).
    for name, codes, first in (("similar_rows", base.similar and base.similar.row, 0),
                               ("sequence_rows", base.sequence and base.sequence.row, 1)):
        vocabulary_rows = _moved(getattr(base, name), n, remap)
        gained = [(codes[item] - first, all_index[item]) for item in (*live, *added) if codes and item in codes]
        if gained:
            vocabulary_rows = vocabulary_rows.copy()
            for code, row in gained:
                vocabulary_rows[code] = row
        model.__dict__[name] = vocabulary_rows
    changes: dict = {"catalogue": None, "all_item_ids": all_item_ids, "all_index": all_index,
                     "attributes": attributes, "live_items": len(live),
                     "popularity_score": np.concatenate([base.popularity_score[:n],
                                                          np.zeros(len(all_item_ids) - n, dtype=np.float32)])}
    if live:
        matrix = np.asarray([vectors[item] for item in live], dtype=np.float32).reshape(len(live), -1)
        norms = np.linalg.norm(matrix, axis=1).astype(np.float32)
        changes.update(item_ids=GrownIds(base.all_item_ids, n, live, np.zeros(0, dtype=np.int64)),
                       item_factors=grown_rows(base.item_factors, matrix),
                       item_norms=grown_rows(base.item_norms, norms),
                       inverse_norms=grown_rows(base.inverse_norms, 1.0 / np.maximum(norms, NORM_FLOOR)),
                       item_index=GrownIndex(base.item_index, {item: n + j for j, item in enumerate(live)}),
                       popularity=np.concatenate([np.asarray(base.popularity, dtype=np.float32),
                                                  np.zeros(len(live), dtype=np.float32)]),
                       retrieval=_moved_retrieval(base.retrieval, n, remap))
    content = _with_new_profiles(base, rows, new, attributes, all_index, cfg)
    changes.update(content=content, **_fresh(base, content, live, kept, added, all_index, len(all_item_ids)))
    for name, value in changes.items():
        object.__setattr__(model, name, value)
    return model


def _fresh(base: FactorModel, content: ContentProfiles | None, live: list[str], kept: np.ndarray, added: list[str],
           all_index: GrownIndex, size: int) -> dict:
    """new_item_rows, fresh_rows and fresh_profiles of the grown model: the live items with a profile, then the
    batch new items that kept no vector, then the added ones. The base's fresh profiles are not copied: the
    grown ones are a RowStack over them."""
    if content is None:
        return {"new_item_rows": np.zeros(0, dtype=np.int64), "fresh_rows": np.zeros(0, dtype=np.int64),
                "fresh_profiles": None}
    n = base.n_items
    profiled = [item for item in live if item in content.row]
    blocks = [(content.matrix[[content.row[item] for item in profiled]], None)] if profiled else []
    if base.fresh_profiles is not None:
        tail = np.flatnonzero(base.fresh_rows >= n)  # a batch model's fresh rows are its new items
        tail = tail[kept[base.fresh_rows[tail] - n]]
        if tail.size:
            blocks.append((base.fresh_profiles, None if tail.size == base.fresh_profiles.shape[0] else tail))
    if added:
        blocks.append((content.matrix[[content.row[item] for item in added]], None))
    first_new = n + len(live)
    return {"new_item_rows": np.concatenate([base.new_item_rows[kept],
                                             np.asarray([content.row[item] for item in added], dtype=np.int64)]),
            "fresh_rows": np.asarray([all_index[item] for item in profiled] + list(range(first_new, size)),
                                     dtype=np.int64),
            "fresh_profiles": RowStack(blocks) if blocks else sparse.csr_matrix((0, content.matrix.shape[1]))}


def _grown_attributes(base: FactorModel, rows: Mapping[str, Mapping], all_index: GrownIndex, live: list[str],
                      kept: np.ndarray, added: list[str], known: Mapping[str, int] | None) -> AttributeArrays:
    """The base's attributes in the grown layout with the live rows laid over them; an item the base lacks
    starts unknown and servable, then takes its row's fields."""
    n = base.n_items
    source = np.concatenate([np.arange(n), np.asarray([base.all_index.get(item, -1) for item in live], dtype=np.int64),
                             n + np.flatnonzero(kept), np.full(len(added), -1)]).astype(np.int64)
    changes = {all_index[item]: row for item, row in rows.items()}
    listed = frozenset(all_index[item] for item in rows
                       if item not in base.all_index or (known is not None and item not in known))
    return base.attributes.take(source).patched(changes, listed=listed)


def _moved_retrieval(retrieval: RetrievalIndex | None, n: int, remap: np.ndarray | None) -> RetrievalIndex | None:
    """The base's candidate lists with their rows of batch new items moved as `remap` says (the factor rows and
    the index over them do not move)."""
    if retrieval is None or remap is None:
        return retrieval

    by_category, by_brand = retrieval.by_category, retrieval.by_brand
    return dataclasses.replace(retrieval, by_category=Ragged(by_category.indptr, _moved(by_category.rows, n, remap)),
                               by_brand=Ragged(by_brand.indptr, _moved(by_brand.rows, n, remap)),
                               popular=_moved(retrieval.popular, n, remap))


def _moved(rows: np.ndarray, n: int, remap: np.ndarray | None) -> np.ndarray:
    """Rows of the base moved to the grown layout: those of batch new items (n and after) as `remap` says."""
    after = np.asarray(rows) >= n
    if remap is None or not after.any():
        return rows
    return np.where(after, remap[np.where(after, rows - n, 0)], rows).astype(rows.dtype)


def _with_attributes(base: FactorModel, rows: Mapping[str, Mapping], known: Mapping[str, int] | None) -> FactorModel:
    """Changes to items the model already ranks only: `base` with its attribute arrays patched at those rows,
    without rebuilding its lookups: a full rebuild walks every item id, this costs the array copies."""
    changes = {base.all_index[item]: row for item, row in rows.items()}
    listed = frozenset(base.all_index[item] for item in rows if known is not None and item not in known)
    model = copy.copy(base)
    object.__setattr__(model, "attributes", base.attributes.patched(changes, listed=listed))
    return model


def _with_new_profiles(base: FactorModel, rows: Mapping[str, Mapping], new: list[str], attributes: AttributeArrays,
                       all_index: Mapping[str, int], cfg: ContentConfig) -> ContentProfiles | None:
    """The batch profiles plus one for each live item the model knew nothing of (`new`: no factors, no profile)."""
    if not new:
        return base.content
    edges = price_edges(attributes.price, cfg.price_bands)
    tokens = []
    for item in new:
        i = all_index[item]
        tokens.append(item_tokens(rows[item].get("title"), attributes.category_of(i), attributes.brand_of(i),
                                  price_band(float(attributes.price[i]), edges), cfg.min_token_length))
    profiles = content_rows(tokens, cfg.num_features)
    if base.content is None:
        return ContentProfiles(new, profiles)
    return base.content.grown(new, profiles)
