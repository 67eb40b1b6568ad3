"""A model version written and published without Spark (delta-rs), in the batch layer's table contracts.

The serving benchmark needs a catalogue-sized model (100k items x 64 factors) in seconds, and the API's
tests and the demo need a published model without a training run. The factors have planted structure:
every item belongs to one category and its factors lean towards that category's direction, so a user who
views items of one category visibly gets more of it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from recsys.config import Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import (
    ITEM_FACTORS,
    ITEMS,
    MODEL_REGISTRY,
    POPULAR_ITEMS,
    SIMILAR_ITEMS,
    USER_FACTORS,
    TableSpec,
)
from recsys.data.factor_columns import factor_column
from recsys.stores.delta_rs import arrow_schema, ensure_table
from recsys.stores.registry_store import activate_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyntheticModel:
    version: str
    user_ids: list[str]
    item_ids: list[str]
    categories: list[str]  # per item
    item_factors: np.ndarray
    user_factors: np.ndarray


def make_model(version: str, n_users: int, n_items: int, rank: int, n_categories: int, seed: int = 7
               ) -> SyntheticModel:
    """Factors = the item's category direction plus noise; users lean towards one or two categories."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(0, 1, (n_categories, rank)).astype(np.float32)
    item_category = rng.integers(0, n_categories, n_items)
    items = (directions[item_category] + rng.normal(0, 0.5, (n_items, rank))).astype(np.float32) * 0.1
    favourite = rng.integers(0, n_categories, n_users)
    users = (directions[favourite] + rng.normal(0, 0.5, (n_users, rank))).astype(np.float32) * 0.1
    return SyntheticModel(version, [f"u{i}" for i in range(n_users)], [f"i{i}" for i in range(n_items)],
                          [f"c{c}" for c in item_category], items, users)


def _append(settings: Settings, spec: TableSpec, columns: dict[str, list | pa.Array]) -> None:
    """Append the columns as rows; contract columns not given are NULL (e.g. the catalogue's live ones)."""
    ensure_table(settings, spec)
    schema = arrow_schema(spec)
    n = len(next(iter(columns.values())))
    columns = {**{f.name: pa.nulls(n, f.type) for f in schema if f.name not in columns}, **columns}
    table = pa.table(columns).select(schema.names).cast(schema)
    write_deltalake(settings.table_path(spec.name), table, mode="append")


def _similar(model: SyntheticModel, per_item: int, sample: int, seed: int) -> dict[str, list]:
    """Top cosine neighbours of every item among a random sample of items (exact top-n is not needed)."""
    rng = np.random.default_rng(seed)
    unit = model.item_factors / np.maximum(np.linalg.norm(model.item_factors, axis=1, keepdims=True), 1e-9)
    pool = rng.choice(len(model.item_ids), min(sample, len(model.item_ids)), replace=False)
    ids = np.asarray(model.item_ids, dtype=object)
    columns: dict[str, list] = {"item_id": [], "similar_id": [], "score": [], "rank": []}
    for start in range(0, len(model.item_ids), 8192):
        scores = unit[start:start + 8192] @ unit[pool].T
        rows = np.arange(scores.shape[0])
        scores[pool[None, :] == (start + rows)[:, None]] = -np.inf  # an item is not its own neighbour
        top = np.argpartition(-scores, per_item, axis=1)[:, :per_item]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
        columns["item_id"].extend(np.repeat(ids[start + rows], per_item).tolist())
        columns["similar_id"].extend(ids[pool[top]].ravel().tolist())
        columns["score"].extend(np.take_along_axis(scores, top, axis=1).ravel().astype(float).tolist())
        columns["rank"].extend(np.tile(np.arange(1, per_item + 1), len(rows)).tolist())
    return columns


def publish_model(settings: Settings, model: SyntheticModel, similar_per_item: int = 10,
                  popular: int = 100, seed: int = 7, metrics: dict[str, dict[str, float]] | None = None) -> str:
    """Write the catalogue, factors, similar and popular items and a registry row, then publish it.

    `metrics` (model -> metric -> value, as the evaluate stage records them) goes into the registry row.
    """
    n_items, version = len(model.item_ids), model.version
    rng = np.random.default_rng(seed)
    popularity = rng.pareto(1.5, n_items) + 1.0
    now = datetime.now(UTC)
    _append(settings, ITEMS, {
        "item_id": model.item_ids, "title": [f"Item {i}" for i in model.item_ids], "category": model.categories,
        "brand": [f"b{n % 50}" for n in range(n_items)],
        "price": np.round(rng.uniform(1, 200, n_items), 2).tolist(), "updated_at": [now] * n_items})
    _append(settings, ITEM_FACTORS, {"model_version": [version] * n_items, "item_id": model.item_ids,
                                     "factors": factor_column(model.item_factors),
                                     "popularity": popularity.tolist()})
    _append(settings, USER_FACTORS, {"model_version": [version] * len(model.user_ids), "user_id": model.user_ids,
                                     "factors": factor_column(model.user_factors)})
    similar = _similar(model, similar_per_item, sample=min(n_items, 2_000), seed=seed)
    _append(settings, SIMILAR_ITEMS, {"model_version": [version] * len(similar["item_id"]), **similar})
    top = np.argsort(-popularity)[:popular]
    _append(settings, POPULAR_ITEMS, {"model_version": [version] * len(top), "segment": ["*"] * len(top),
                                      "item_id": [model.item_ids[i] for i in top],
                                      "score": popularity[top].tolist(), "rank": list(range(1, len(top) + 1))})
    _append(settings, MODEL_REGISTRY, {
        "model_version": [version], "created_at": [now], "run_date": [now.date().isoformat()],
        "status": [mv.APPROVED], "published_at": [None], "params": ['{"source": "synthetic"}'],
        "metrics": [json.dumps(metrics or {}, sort_keys=True)],
        "data_from": [None], "data_to": [None], "n_users": [len(model.user_ids)], "n_items": [n_items],
        "n_interactions": [0], "tuning": [None], "gate_reason": ["synthetic model"], "report_uri": [None]})
    previous, current = activate_version(settings, version)
    log.info("published synthetic model %s (%d users, %d items, rank %d; was %s)", current,
             len(model.user_ids), n_items, model.item_factors.shape[1], previous)
    return current
