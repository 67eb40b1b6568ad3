"""Where serving gets the current batch model: an interface and a Delta (delta-rs) implementation.

delta-rs reads the tables without a JVM, so an API worker starts in milliseconds. Reads go through
delta-rs' own query engine (QueryBuilder) rather than a pyarrow dataset scan, whose C++ threads can
abort the interpreter at exit ("terminate called without an active exception", delta-rs #2184).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import TableNotFoundError
from scipy import sparse

from recsys.config import Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import ITEM_CONTENT, ITEM_FACTORS, MODEL_REGISTRY, POPULAR_ITEMS, USER_FACTORS

_VERSION = re.compile(r"^[A-Za-z0-9_.:\-]+$")


def query_delta(table: DeltaTable, sql: str) -> pa.Table:
    """Run SQL against one Delta table registered as `t`, with delta-rs' engine (see module doc)."""
    return pa.table(QueryBuilder().register("t", table).execute(sql).read_all())


@dataclass(frozen=True)
class FactorModel:
    """One model version held in memory: L2-normalisable float32 matrices and id lookups."""

    version: str
    user_ids: dict[str, int]
    user_factors: np.ndarray
    item_ids: list[str]
    item_factors: np.ndarray
    popularity: np.ndarray
    segment_popular: dict[str, list[str]] = field(default_factory=dict)  # segment -> items, most popular first
    content: ContentProfiles | None = None  # catalogue profiles: how items ALS has not seen get ranked
    item_index: dict[str, int] = field(init=False)
    item_unit: np.ndarray = field(init=False)
    new_item_rows: np.ndarray = field(init=False)  # content rows of catalogue items without factors
    new_item_profiles: sparse.csr_matrix | None = field(init=False)  # those rows, sliced once per model

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_index", {item: i for i, item in enumerate(self.item_ids)})
        rows = [] if self.content is None else [r for i, r in self.content.row.items() if i not in self.item_index]
        object.__setattr__(self, "new_item_rows", np.asarray(sorted(rows), dtype=np.int64))
        object.__setattr__(self, "new_item_profiles",
                           None if self.content is None else self.content.matrix[self.new_item_rows])
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        object.__setattr__(self, "item_unit", self.item_factors / np.maximum(norms, 1e-9))


@dataclass(frozen=True)
class ContentProfiles:
    """L2-normalised sparse content profiles of catalogue items (rows), as the batch layer wrote them."""

    item_ids: list[str]
    matrix: sparse.csr_matrix
    row: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", {item: i for i, item in enumerate(self.item_ids)})


class ModelStore(Protocol):
    def current_version(self) -> str | None: ...

    def load(self, version: str) -> FactorModel: ...


def _matrix(column) -> np.ndarray:
    values = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if len(values) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    flat = np.asarray(pc.list_flatten(values).to_numpy(zero_copy_only=False), dtype=np.float32)
    return flat.reshape(len(values), -1)


class DeltaModelStore:
    """Reads the registry and factor partitions from the Delta tables named in the contract."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _table(self, name: str) -> DeltaTable | None:
        try:
            return DeltaTable(self._settings.table_path(name))
        except TableNotFoundError:
            return None

    def registry(self) -> list[dict]:
        table = self._table(MODEL_REGISTRY.name)
        return [] if table is None else query_delta(table, "SELECT * FROM t").to_pylist()

    def current_version(self) -> str | None:
        return mv.current_version(self.registry())

    def load(self, version: str, extras: bool = True) -> FactorModel:
        """The factors of `version`; extras (segment favourites, content profiles) only when asked."""
        users_t, items_t = self._table(USER_FACTORS.name), self._table(ITEM_FACTORS.name)
        if users_t is None or items_t is None:
            raise LookupError("factor tables do not exist yet")
        if not _VERSION.match(version):
            raise ValueError(f"malformed model version {version!r}")
        where = f"WHERE model_version = '{version}'"
        users = query_delta(users_t, f"SELECT user_id, factors FROM t {where}")
        items = query_delta(items_t, f"SELECT item_id, factors, popularity FROM t {where}")
        if items.num_rows == 0:
            raise LookupError(f"model version {version} has no item factors")
        popular_t = self._table(POPULAR_ITEMS.name)
        segments: dict[str, list[str]] = {}
        if extras and popular_t is not None:  # versions trained before the table existed have none
            rows = query_delta(popular_t, f"SELECT segment, item_id FROM t {where} ORDER BY segment, rank")
            for segment, item in zip(rows.column("segment").to_pylist(), rows.column("item_id").to_pylist(),
                                     strict=True):
                segments.setdefault(segment, []).append(item)
        return FactorModel(
            version=version,
            user_ids={u: i for i, u in enumerate(users.column("user_id").to_pylist())},
            user_factors=_matrix(users.column("factors")),
            item_ids=items.column("item_id").to_pylist(),
            item_factors=_matrix(items.column("factors")),
            popularity=np.asarray(items.column("popularity").to_numpy(), dtype=np.float32),
            segment_popular=segments,
            content=self._content(where) if extras else None,
        )

    def _content(self, where: str) -> ContentProfiles | None:
        table = self._table(ITEM_CONTENT.name)
        if table is None:
            return None
        rows = query_delta(table, f"SELECT item_id, indices, weights FROM t {where} ORDER BY item_id")
        if rows.num_rows == 0:
            return None
        indices, weights = rows.column("indices").combine_chunks(), rows.column("weights").combine_chunks()
        indptr = np.asarray(indices.offsets.to_numpy(), dtype=np.int64) - indices.offsets[0].as_py()
        matrix = sparse.csr_matrix(
            (np.asarray(pc.list_flatten(weights).to_numpy(zero_copy_only=False), dtype=np.float32),
             np.asarray(pc.list_flatten(indices).to_numpy(zero_copy_only=False), dtype=np.int32), indptr),
            shape=(rows.num_rows, self._settings.content.num_features))
        return ContentProfiles(rows.column("item_id").to_pylist(), matrix)
