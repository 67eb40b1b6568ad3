"""Item-to-item lists: "similar items" (batch neighbours blended with live co-views) and their fallbacks."""

from __future__ import annotations

import numpy as np

from recsys.config import SimilarWeights
from recsys.serving import reasons as why
from recsys.serving.results import ScoredItem
from recsys.serving.top_k import best_rows
from recsys.stores.model_store import FactorModel


def fallback_similar(model: FactorModel, item_id: str, k: int) -> list[tuple[str, float]]:
    """Neighbours when the version has no batch list for the item: factor cosine for an ALS item,
    content cosine for a new (content-only) item; [] when neither is available."""
    row = model.all_index[item_id]
    if row < model.n_items:
        cosine = (model.item_factors @ model.item_factors[row]) * model.inverse_norms * model.inverse_norms[row]
        ids = model.item_ids
    elif model.content is not None and item_id in model.content.row:
        content = model.content
        cosine = np.asarray((content.matrix @ content.matrix[content.row[item_id]].T).toarray()).ravel()
        ids = content.item_ids
    else:
        return []
    out = [(ids[r], float(cosine[r])) for r in best_rows(cosine, k + 1).tolist()]
    return [(other, score) for other, score in out if other != item_id and score > 0][:k]


def live_cosine(model: FactorModel, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the live items' rows, their factor cosine to each ALS row of `rows`, live x rows): the live items are
    folded in since the batch run, so in no batch similar-items list."""
    live = np.arange(model.n_items - model.live_items, model.n_items)
    cosine = (model.item_factors[live] @ model.item_factors[rows].T) * \
        model.inverse_norms[live][:, None] * model.inverse_norms[rows][None, :]
    return live, cosine


def live_similar(model: FactorModel, item_id: str, k: int) -> list[tuple[str, float]]:
    """Factor cosine of an ALS item to the live items."""
    row = model.all_index[item_id]
    if model.live_items == 0 or row >= model.n_items:
        return []
    live, cosine = live_cosine(model, np.asarray([row]))
    cosine = cosine[:, 0]
    ids = model.item_ids[int(live[0]):model.n_items]
    return [(ids[r], float(cosine[r])) for r in best_rows(cosine, k).tolist() if ids[r] != item_id and cosine[r] > 0]


def blend_similar(model: FactorModel, item_id: str, batch: list[tuple[str, float]],
                  co_views: list[tuple[str, float]], k: int, weights: SimilarWeights) -> list[ScoredItem]:
    """weights.batch x batch similarity + weights.co_views x co-view count / the largest count."""
    parts: dict[str, dict[str, float]] = {}
    for other, score in batch:
        if other != item_id and other in model.all_index and score > 0:
            parts.setdefault(other, {})["batch"] = weights.batch * score
    known = [(other, count) for other, count in co_views if other != item_id and other in model.all_index
             and count > 0]
    top = max((count for _, count in known), default=0.0)
    for other, count in known:
        parts.setdefault(other, {})["co_views"] = weights.co_views * count / top
    ranked = sorted(parts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    wording = {"batch": why.similar_to(item_id), "co_views": why.viewed_together(item_id)}
    return [ScoredItem(other, sum(p.values()), [wording[name] for name, part in
                                                 sorted(p.items(), key=lambda kv: -kv[1]) if part > 0])
            for other, p in ranked if sum(p.values()) > 0][:k]
