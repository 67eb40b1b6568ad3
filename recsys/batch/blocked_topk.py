"""Top-k by factor score for a sample of users, in blocks: what evaluation asks of a factor model.

Spark's recommendForAllUsers scores every user against every item (200,000 x 50,000 at 10M events took
27 of 33 minutes). Evaluation needs neither every user nor every item list: it scores a seeded sample of
held-out users (evaluation.max_users), and for each of them only the k best items it has not trained on.
The item factors are broadcast once; each task multiplies a block of its users' factors by them (one
BLAS matrix product), masks what each user already had and keeps the k best per row with a partial sort.

A sample small enough (users x items within `driver_cells`) is scored the same way on the driver instead:
its factors are a few megabytes, and no Python worker has to start (each holds ~150 MB of interpreter,
pandas and pyarrow beside the JVM). Larger ones, and every-user lists, stay in the executors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys.data.factor_columns import factor_matrix

RESULT_SCHEMA = "user_id string, items array<string>"
BLOCK_CELLS = 1_000_000  # user x item scores one block holds at once (4 MB of float32, with its sort buffers ~16 MB)


def sample_users(users: DataFrame, n: int, seed: int) -> DataFrame:
    """(user_id): at most n distinct users (0 = all), the same ones on every run: the smallest seeded hashes."""
    distinct = users.select("user_id").distinct()
    if n <= 0:
        return distinct
    return distinct.orderBy(F.xxhash64("user_id", F.lit(seed)), "user_id").limit(n)


def block_top_k(users: np.ndarray, items: np.ndarray, n: int, seen: Sequence[np.ndarray],
                block_cells: int = BLOCK_CELLS) -> list[np.ndarray]:
    """Per user row, the positions of its n best-scoring items outside `seen` (positions), best first.

    Ties go to the lower item position (callers order items by id). A user with fewer than n unseen
    items gets them all.
    """
    n = min(n, items.shape[0])
    if n <= 0:
        return [np.empty(0, np.int64) for _ in range(users.shape[0])]
    rows = max(1, block_cells // max(items.shape[0], 1))
    out: list[np.ndarray] = []
    for start in range(0, users.shape[0], rows):
        scores = users[start:start + rows] @ items.T  # one BLAS product per block
        for r, positions in enumerate(seen[start:start + rows]):
            scores[r, positions] = -np.inf
        top = np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < scores.shape[1] else \
            np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -top_scores), axis=1)  # best first, ties to the lower position
        best, best_scores = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)
        out.extend(row[np.isfinite(row_scores)] for row, row_scores in zip(best, best_scores, strict=True))
    return out


def _seen_positions(seen: pa.Array, ids: pa.Array) -> list[np.ndarray]:
    """Per row, the catalogue positions of its seen items (items outside the catalogue are skipped)."""
    lengths = pc.fill_null(pc.list_value_length(seen), 0).to_numpy(zero_copy_only=False)
    positions = pc.fill_null(pc.index_in(seen.flatten(), value_set=ids), -1).to_numpy(zero_copy_only=False)
    return [row[row >= 0] for row in np.split(positions.astype(np.int64), np.cumsum(lengths)[:-1])]


def _item_lists(best: list[np.ndarray], item_ids: pa.Array) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in best])]).astype(np.int32)
    flat = np.concatenate(best) if best else np.empty(0, np.int64)
    return pa.ListArray.from_arrays(pa.array(offsets), item_ids.take(pa.array(flat)))


def _top_k_of(batch: pa.RecordBatch, item_ids: pa.Array, items: np.ndarray, n: int) -> pa.RecordBatch:
    """(user_id, items) of a batch of (user_id, factors, seen)."""
    users = factor_matrix(batch.column("factors"))
    best = block_top_k(users, items, n, _seen_positions(batch.column("seen"), item_ids))
    return pa.RecordBatch.from_arrays([batch.column("user_id"), _item_lists(best, item_ids)],
                                      names=["user_id", "items"])


def factor_top_k(user_factors: DataFrame, item_factors: DataFrame, seen: DataFrame | None, n: int,
                 driver_cells: int = 0) -> DataFrame:
    """(user_id, items): each user's n best items by factor dot product that it has not seen, best first.

    user_factors and item_factors are (user_id|item_id, factors array<float>); seen is (user_id, seen
    array<string>) or None. Users of user_factors are all scored: sample them first (sample_users).
    Arrow in and out (mapInArrow): factors reach numpy as one buffer per batch, never as Python lists.
    With at most driver_cells user x item scores in all (0: never), the users are scored on the driver.
    """
    catalogue = item_factors.select("item_id", "factors").orderBy("item_id").toArrow()
    if catalogue.num_rows == 0:
        return user_factors.select("user_id", F.array().cast("array<string>").alias("items"))
    ids = catalogue.column("item_id").combine_chunks()
    matrix = factor_matrix(catalogue.column("factors"))
    spark = user_factors.sparkSession
    rows = user_factors.select("user_id", "factors")
    if seen is not None:
        rows = rows.join(seen.select("user_id", "seen"), "user_id", "left")
    else:
        rows = rows.withColumn("seen", F.array().cast("array<string>"))
    if (max_users := driver_cells // catalogue.num_rows) > 0:
        local = rows.limit(max_users + 1).toArrow()  # one more than fits tells a sample too large to score here
        if local.num_rows <= max_users:
            if local.num_rows == 0:
                return spark.createDataFrame([], RESULT_SCHEMA)
            scored = _top_k_of(pa.concat_batches(local.to_batches()), ids, matrix, n)
            return spark.createDataFrame(pa.Table.from_batches([scored]), RESULT_SCHEMA)
    shared = spark.sparkContext.broadcast((ids, matrix))

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        item_ids, items = shared.value
        for batch in batches:
            if batch.num_rows:
                yield _top_k_of(batch, item_ids, items, n)

    return rows.mapInArrow(score, RESULT_SCHEMA)
