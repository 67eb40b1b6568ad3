"""Implicit ALS on Spark with conjugate-gradient solves: MLlib's model and regularisation, a fraction of its work.

Spark MLlib's ALS builds and factors a k x k system per user and item in every sweep: at rank 64 that took 85
of the 103 s of a 10M-event run, 7x the whole run of the single-machine `implicit` library. This trainer solves
the same equations with recsys.als.conjugate_gradient, where the data is:
- up to als.driver_interactions interactions (a shop's usual size; about 120 bytes each), on the driver: one
  collect, ids numbered in sorted order, every sweep in the driver's cores, and the factors back to the JVM as
  Arrow batches. No Spark job, broadcast or Python worker per half-sweep: at 1M events those were 10 of the
  11.7 s a fit took in the executors.
- beyond that, in the executors: ids numbered by dense_index, the interactions cut into CSR blocks by user and
  by item (one row per block, its arrays as binary, built with mapInArrow and cached for the fit). A half-sweep
  broadcasts the other side's factors and this side's previous ones (CG starts from them), solves each block in
  its task and collects the rows; the final factors are broadcast once more and written out beside the
  numbering.
Either way the driver holds both factor matrices (float32: 200,000 users x 64 is 51 MB), as serving and
evaluation do, and the result is the (user_id, factors) and (item_id, factors) frames als.factor_frames makes
of MLlib's model.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from recsys.als.conjugate_gradient import CsrBlock, initial_factors, load_kernel, solve_rows
from recsys.batch.indexing import dense_index
from recsys.config import AlsConfig
from recsys.data.factor_columns import factor_column

log = logging.getLogger(__name__)

BLOCK_SCHEMA = "ids binary, indptr binary, indices binary, strengths binary"
SOLVED_SCHEMA = "ids binary, factors binary"
EMIT_ROWS = 65_536  # rows per Arrow batch of the output frames


def fit_cg(interactions: DataFrame, cfg: AlsConfig) -> tuple[DataFrame, DataFrame]:
    """(user_id, factors) and (item_id, factors array<float>) of implicit ALS on (user_id, item_id, strength)."""
    started = time.time()
    n = interactions.count() if cfg.driver_interactions > 0 else None
    on_driver = n is not None and n <= cfg.driver_interactions
    fit = _fit_on_driver if on_driver else _fit_in_executors
    frames, (users, items) = fit(interactions, cfg)
    log.info("ALS (conjugate gradient, %s): %d users x %d items, rank %d, %d sweeps in %.1fs",
             "on the driver" if on_driver else "in the executors", users, items, cfg.rank, cfg.max_iter,
             time.time() - started)
    return frames


Frames = tuple[tuple[DataFrame, DataFrame], tuple[int, int]]


def _fit_on_driver(interactions: DataFrame, cfg: AlsConfig) -> Frames:
    """Collect the interactions, number the ids (sorted), sweep in the driver's cores."""
    with ThreadPoolExecutor(1) as loader:  # the kernel loads while the JVM runs the collect
        loaded = loader.submit(load_kernel)
        table = interactions.select("user_id", "item_id", "strength").toArrow()
    loaded.result()
    user_ids, u = _numbered(table.column("user_id"))
    item_ids, i = _numbered(table.column("item_id"))
    strengths = table.column("strength").to_numpy().astype(np.float32)
    del table
    by_user, by_item = CsrBlock.of(u, i, strengths), CsrBlock.of(i, u, strengths)
    x, y = initial_factors(len(user_ids), cfg.rank, cfg.seed), initial_factors(len(item_ids), cfg.rank, cfg.seed + 1)
    threads = _driver_cores(interactions)
    for sweep in range(cfg.max_iter):
        x[by_user.ids] = solve_rows(by_user, x[by_user.ids], y, cfg.reg_param, cfg.alpha, cfg.cg_steps, threads)
        y[by_item.ids] = solve_rows(by_item, y[by_item.ids], x, cfg.reg_param, cfg.alpha, cfg.cg_steps, threads)
        log.debug("ALS sweep %d/%d done", sweep + 1, cfg.max_iter)
    spark = interactions.sparkSession
    return (_local_frame(spark, "user_id", user_ids, x), _local_frame(spark, "item_id", item_ids, y)), (len(x), len(y))


def _numbered(ids: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(the distinct ids, sorted; each id's position among them)."""
    distinct = pc.unique(ids)
    distinct = distinct.take(pc.sort_indices(distinct))
    return distinct, pc.index_in(ids, value_set=distinct).to_numpy().astype(np.int32)


def _driver_cores(frame: DataFrame) -> int:
    """Cores the driver may use: its tasks' in local mode, this machine's (or container's) otherwise capped by the
    cluster's parallelism."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, frame.sparkSession.sparkContext.defaultParallelism))


def _fit_in_executors(interactions: DataFrame, cfg: AlsConfig) -> Frames:
    """CSR blocks by user and by item, cached; each half-sweep one job over one side's blocks."""
    users = dense_index(interactions, "user_id", "uidx")  # cached and computed already
    items = dense_index(interactions, "item_id", "iidx")
    indexed = interactions.join(users, "user_id").join(items, "item_id").select("uidx", "iidx", "strength")
    blocks = cfg.blocks or interactions.sparkSession.sparkContext.defaultParallelism
    by_user = _blocks(indexed, "uidx", "iidx", blocks)
    by_item = _blocks(indexed, "iidx", "uidx", blocks)
    started = time.time()
    try:
        x = initial_factors(users.count(), cfg.rank, cfg.seed)
        y = initial_factors(items.count(), cfg.rank, cfg.seed + 1)
        for sweep in range(cfg.max_iter):
            x = _half_sweep(by_user, x, y, cfg)
            y = _half_sweep(by_item, y, x, cfg)
            log.info("ALS sweep %d/%d done, %.1fs in", sweep + 1, cfg.max_iter, time.time() - started)
    finally:
        by_user.unpersist()
        by_item.unpersist()
    return (_factor_frame(users, "user_id", "uidx", x), _factor_frame(items, "item_id", "iidx", y)), (len(x), len(y))


def _blocks(indexed: DataFrame, own: str, other: str, n: int) -> DataFrame:
    """One CSR block per partition of `indexed` hashed by `own`, its arrays as binary. Cached: every sweep reads it."""
    def build(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        parts = [batch for batch in batches if batch.num_rows]
        if not parts:
            return
        table = pa.Table.from_batches(parts)
        block = CsrBlock.of(table.column(own).to_numpy(), table.column(other).to_numpy(),
                            table.column("strength").to_numpy())
        yield pa.RecordBatch.from_pydict({name: [getattr(block, name).tobytes()]
                                          for name in ("ids", "indptr", "indices", "strengths")})

    return indexed.repartition(n, own).mapInArrow(build, BLOCK_SCHEMA).persist()


def _half_sweep(blocks: DataFrame, own: np.ndarray, other: np.ndarray, cfg: AlsConfig) -> np.ndarray:
    """The block side's factors solved against `other`, from `own`, block by block in the executors."""
    context = blocks.sparkSession.sparkContext
    own_b, other_b = context.broadcast(own), context.broadcast(other)
    reg, alpha, steps = cfg.reg_param, cfg.alpha, cfg.cg_steps

    def solve(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        previous, fixed = own_b.value, other_b.value
        for batch in batches:
            for row in batch.to_pylist():
                block = CsrBlock(np.frombuffer(row["ids"], dtype=np.int32),
                                 np.frombuffer(row["indptr"], dtype=np.int64),
                                 np.frombuffer(row["indices"], dtype=np.int32),
                                 np.frombuffer(row["strengths"], dtype=np.float32))
                solved = solve_rows(block, previous[block.ids], fixed, reg, alpha, steps)
                yield pa.RecordBatch.from_pydict({"ids": [row["ids"]], "factors": [solved.tobytes()]})

    try:
        solved = blocks.mapInArrow(solve, SOLVED_SCHEMA).toArrow()
    finally:
        own_b.destroy()
        other_b.destroy()
    out = np.empty_like(own)
    for ids, factors in zip(solved.column("ids").to_pylist(), solved.column("factors").to_pylist(), strict=True):
        out[np.frombuffer(ids, dtype=np.int32)] = np.frombuffer(factors, dtype=np.float32).reshape(-1, own.shape[1])
    return out


def _factor_frame(numbering: DataFrame, id_col: str, index_col: str, factors: np.ndarray) -> DataFrame:
    """(id_col, factors array<float>): each numbered id with its row of `factors`, written by the executors
    from a broadcast (the plan keeps it alive for as long as the frame is used)."""
    broadcast = numbering.sparkSession.sparkContext.broadcast(factors)

    def emit(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        every = broadcast.value
        for batch in batches:
            for start in range(0, batch.num_rows, EMIT_ROWS):
                part = batch.slice(start, EMIT_ROWS)
                rows = every[part.column(index_col).to_numpy()]
                yield pa.RecordBatch.from_arrays([part.column(id_col), factor_column(rows)], names=[id_col, "factors"])

    return numbering.mapInArrow(emit, f"{id_col} string, factors array<float>")


def _local_frame(spark, id_col: str, ids: pa.Array, factors: np.ndarray) -> DataFrame:
    """(id_col, factors array<float>) from the driver's arrays: Arrow batches the JVM reads, no Python worker."""
    table = pa.Table.from_arrays([ids, factor_column(factors)], names=[id_col, "factors"])
    return spark.createDataFrame(table, f"{id_col} string, factors array<float>")

