"""Where serving gets the current batch model: an interface and a Delta (delta-rs) implementation.

delta-rs reads the tables without a JVM, so an API worker starts in milliseconds. Reads go through
delta-rs' own query engine (QueryBuilder) rather than a pyarrow dataset scan, whose C++ threads can
abort the interpreter at exit ("terminate called without an active exception", delta-rs #2184).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import TableNotFoundError
from scipy import sparse

from recsys.als.foldin import FoldIn
from recsys.config import MergeWeights, Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import (
    ITEM_CONTENT,
    ITEM_FACTORS,
    ITEMS,
    MODEL_REGISTRY,
    POPULAR_ITEMS,
    SIMILAR_ITEMS,
    USER_CANDIDATES,
    USER_FACTORS,
    USER_HISTORY,
)
from recsys.data.factor_columns import factor_matrix
from recsys.sequence.gru import GruWeights
from recsys.sequence.store import read_weights
from recsys.stores.attribute_arrays import AttributeArrays, ItemCatalogue, status_of
from recsys.stores.grown_index import GrownIds, GrownIndex
from recsys.stores.retrieval_index import Ragged, RetrievalIndex
from recsys.stores.row_stack import RowStack
from recsys.stores.similar_items import SimilarItems
from recsys.stores.user_history import UserHistory

log = logging.getLogger(__name__)
_VERSION = re.compile(r"^[A-Za-z0-9_.:\-]+$")
NORM_FLOOR = 1e-9  # a zero factor row gets cosine 0 with everything instead of a division by zero


def query_delta(table: DeltaTable, sql: str) -> pa.Table:
    """Run SQL against one Delta table registered as `t`, with delta-rs' engine (see module doc).

    The reply is read through the Arrow stream interface, not pa.table(): that checks for a pandas DataFrame first
    and so imports pandas, about 30 MB in every API worker for the registry's few rows."""
    return pa.RecordBatchReader.from_stream(QueryBuilder().register("t", table).execute(sql)).read_all()


@dataclass(frozen=True)
class FactorModel:
    """One model version held in memory: float32 matrices, id lookups and per-item arrays.

    Serving ranks "all items": the ALS items (rows of item_factors) followed by the new items (catalogue
    items with a content profile but no factors). Every per-item array below is aligned to all_item_ids,
    so a request scores, filters and ranks the whole catalogue with vector operations.
    """

    version: str
    user_ids: Mapping[str, int]
    user_factors: np.ndarray
    item_ids: Sequence[str]
    item_factors: np.ndarray
    popularity: np.ndarray
    segment_popular: dict[str, list[str]] = field(default_factory=dict)  # segment -> items, most popular first
    content: ContentProfiles | None = None  # catalogue profiles: how items ALS has not seen get ranked
    catalogue: ItemCatalogue | None = None  # category, brand, price of the catalogue (ITEMS table)
    similar: SimilarItems | None = None  # the version's batch similar-items lists
    trained_at: float | None = None  # registry created_at (epoch s): a user erased after it has no row here to use
    history: UserHistory | None = None  # each known user's items at training time, with what they own
    merge: MergeWeights | None = None  # the merge weights tuned with this version (None: serving.merge)
    max_per_category: int | None = None  # the category cap tuned with it (None: serving.max_per_category)
    live_items: int = 0  # the last rows of item_ids are live items folded in by the speed layer (serving.live_model)
    user_candidates: Ragged | None = None  # row of user_ids -> the batch top-N rows of all_item_ids (USER_CANDIDATES)
    retrieval: RetrievalIndex | None = field(default=None, compare=False)  # candidate structures (shared_model)
    sequence: GruWeights | None = None  # the version's next-item model (None: trained without one)
    item_index: Mapping[str, int] = field(init=False)
    new_item_rows: np.ndarray = field(init=False)  # content rows of catalogue items without factors
    fresh_rows: np.ndarray = field(init=False)  # rows of all_item_ids newer than the batch model, with a content
    # profile: the live items (speed-layer vectors), then the new items; ascending. "New, like X" ranks them all
    fresh_profiles: sparse.csr_matrix | RowStack | None = field(init=False)  # their profiles, sliced once per model
    all_item_ids: Sequence[str] = field(init=False)  # item_ids, then the new items
    all_index: Mapping[str, int] = field(init=False)
    attributes: AttributeArrays = field(init=False)  # aligned to all_item_ids
    item_norms: np.ndarray = field(init=False)  # L2 norm of each factor row (cosines without a unit copy)
    inverse_norms: np.ndarray = field(init=False)  # 1 / item_norms (0 rows: 1 / NORM_FLOOR)
    popularity_score: np.ndarray = field(init=False)  # log popularity scaled to [0, 1], aligned to all_item_ids

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "item_factors", np.ascontiguousarray(self.item_factors, dtype=np.float32))
        set_(self, "user_factors", np.ascontiguousarray(self.user_factors, dtype=np.float32))
        set_(self, "item_index", {item: i for i, item in enumerate(self.item_ids)})
        rows = [] if self.content is None else [r for i, r in self.content.row.items() if i not in self.item_index]
        set_(self, "new_item_rows", np.asarray(sorted(rows), dtype=np.int64))
        new_ids = [] if self.content is None else [self.content.item_ids[r] for r in self.new_item_rows]
        set_(self, "all_item_ids", [*self.item_ids, *new_ids])
        n = len(self.item_ids)
        set_(self, "all_index", {**self.item_index, **{item: n + j for j, item in enumerate(new_ids)}} if new_ids
             else self.item_index)  # the ALS lookup itself when there are no new items
        live = [] if self.content is None else [
            i for i in self.item_ids[n - self.live_items:n] if i in self.content.row]
        set_(self, "fresh_rows", np.asarray([self.item_index[i] for i in live] + list(range(n, n + len(new_ids))),
                                            dtype=np.int64))
        set_(self, "fresh_profiles", None if self.content is None else self.content.matrix[
            [self.content.row[i] for i in live] + self.new_item_rows.tolist()])
        set_(self, "attributes", AttributeArrays.unknown(len(self.all_item_ids)) if self.catalogue is None
             else self.catalogue.align(self.all_item_ids))
        set_(self, "item_norms", np.linalg.norm(self.item_factors, axis=1).astype(np.float32))
        set_(self, "inverse_norms", (1.0 / np.maximum(self.item_norms, NORM_FLOOR)).astype(np.float32))
        log_pop = np.log1p(np.maximum(np.asarray(self.popularity, dtype=np.float32), 0))
        top = float(log_pop.max()) if log_pop.size else 0.0
        score = np.zeros(len(self.all_item_ids), dtype=np.float32)
        score[:len(self.item_ids)] = log_pop / top if top > 0 else 0.0
        set_(self, "popularity_score", score)

    @property
    def n_items(self) -> int:
        """ALS items; rows at and after this index of all_item_ids are new items."""
        return len(self.item_ids)

    def category_cap(self, configured: int) -> int:
        """Items of one category a list may hold: the version's tuned cap, else serving.max_per_category."""
        return configured if self.max_per_category is None else self.max_per_category

    def rows_of(self, vocabulary: list[str]) -> np.ndarray:
        """Row in all_item_ids of each item of `vocabulary` (-1: not ranked)."""
        return np.fromiter((self.all_index.get(item, -1) for item in vocabulary), dtype=np.int64,
                           count=len(vocabulary))

    @cached_property
    def similar_rows(self) -> np.ndarray:
        """rows_of the similar-items vocabulary, built once."""
        return self.rows_of([] if self.similar is None else self.similar.vocabulary)

    @cached_property
    def sequence_rows(self) -> np.ndarray:
        """rows_of the sequence model's vocabulary, built once."""
        return self.rows_of([] if self.sequence is None else self.sequence.item_ids)

    @cached_property
    def fold_in(self) -> FoldIn:
        """The speed layer's fold-in over this version's items, built on first use (anonymous visitors)."""
        return FoldIn(self.item_ids, self.item_factors, self.item_index)


@dataclass(frozen=True)
class ContentProfiles:
    """L2-normalised sparse content profiles of catalogue items (rows), as the batch layer wrote them."""

    item_ids: Sequence[str]
    matrix: sparse.csr_matrix | RowStack
    row: Mapping[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", {item: i for i, item in enumerate(self.item_ids)})

    def grown(self, item_ids: list[str], matrix: sparse.csr_matrix) -> ContentProfiles:
        """These profiles and those of `item_ids` after them, without copying the ones here: the lookup grows over
        this one's and the matrix is a RowStack over this one's (shared) and the new rows."""
        grown = copy.copy(self)
        n = len(self.item_ids)
        object.__setattr__(grown, "item_ids", GrownIds(self.item_ids, n, added=item_ids))
        object.__setattr__(grown, "matrix", RowStack([(self.matrix, None), (matrix, None)]))
        object.__setattr__(grown, "row", GrownIndex(self.row, {item: n + j for j, item in enumerate(item_ids)}))
        return grown


class ModelStore(Protocol):
    def current_version(self) -> str | None: ...

    def load(self, version: str, extras: bool = True) -> FactorModel: ...


class FactorDimensionError(ValueError):
    """A version's user and item factors do not all have one rank: rows of different fits were mixed."""


def check_factor_dimensions(version: str, *columns) -> None:
    """Every factor row of the version (users and items) has the same length, or FactorDimensionError.

    Two runs writing one version (a race the registry claim now prevents) could leave user factors of one fit
    next to item factors of another; scoring them would be silently wrong, so loading refuses."""
    lengths: set[int] = set()
    for column in columns:
        values = column.combine_chunks() if hasattr(column, "combine_chunks") else column
        if len(values):
            lengths.update(n for n in pc.unique(pc.list_value_length(values)).to_pylist() if n is not None)
    if len(lengths) > 1:
        raise FactorDimensionError(f"model version {version} mixes factor ranks {sorted(lengths)}: "
                                   "its user and item factors come from different fits; retrain it")


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
        """The factors of `version`; extras (segment favourites, content profiles, catalogue, similar items,
        user history) only when asked: the speed layer loads a version on every executor and needs only the
        factors."""
        users_t, items_t = self._table(USER_FACTORS.name), self._table(ITEM_FACTORS.name)
        if users_t is None or items_t is None:
            raise LookupError("factor tables do not exist yet")
        if not _VERSION.match(version):
            raise ValueError(f"malformed model version {version!r}")
        where = f"WHERE model_version = '{version}'"
        tables = {USER_FACTORS.name: query_delta(users_t, f"SELECT user_id, factors FROM t {where}"),
                  ITEM_FACTORS.name: query_delta(items_t, f"SELECT item_id, factors, popularity FROM t {where}")}
        if extras:
            for spec, columns in ((POPULAR_ITEMS, "segment, item_id, rank"), (SIMILAR_ITEMS, SIMILAR_COLUMNS),
                                  (ITEM_CONTENT, "item_id, indices, weights"), (USER_HISTORY, HISTORY_COLUMNS),
                                  (USER_CANDIDATES, "user_id, items")):
                table = self._table(spec.name)  # versions trained before a table existed have none
                if table is not None:
                    tables[spec.name] = query_delta(table, f"SELECT {columns} FROM t {where}")
            catalogue = self._catalogue()
        model = model_from_tables(version, tables, self._settings.content.num_features,
                                  catalogue if extras else None)
        row = next((r for r in self.registry() if r["model_version"] == version), None)  # one registry read
        created = None if row is None else row.get("created_at")
        model = dataclasses.replace(model, trained_at=None if created is None else created.timestamp())
        if not extras:
            return model
        params = json.loads(row["params"]) if row is not None and row.get("params") else {}  # what it was tuned with
        return dataclasses.replace(model, merge=MergeWeights(**params["merge"]) if params.get("merge") else None,
                                   max_per_category=params.get("max_per_category"), sequence=self.sequence(version))

    def sequence(self, version: str) -> GruWeights | None:
        """The version's sequence weights, memory-mapped; a version whose weights cannot be read is served
        without the signal rather than not at all."""
        try:
            return read_weights(self._settings.sequence_path(version),
                                self._settings.path(self._settings.sequence.cache_dir))
        except (OSError, ValueError) as exc:
            log.warning("model %s is served without its sequence model: %s", version, exc)
            return None

    def _catalogue(self) -> ItemCatalogue | None:
        """The latest attributes per item; None without an ITEMS table (then filters match nothing)."""
        table = self._table(ITEMS.name)
        if table is None:
            return None
        names = set(table.schema().to_arrow().names)
        live = ", ".join(c if c in names else f"NULL AS {c}" for c in ("available", "blocked"))
        rows = query_delta(table, f"SELECT item_id, category, brand, price, {live} FROM ("
                                  f"SELECT item_id, category, brand, price, {live}, ROW_NUMBER() OVER ("
                                  "PARTITION BY item_id ORDER BY updated_at DESC NULLS LAST) AS latest FROM t"
                                  ") WHERE latest = 1 ORDER BY item_id")  # codes alike in every worker
        statuses = [status_of(a, b) for a, b in zip(rows.column("available").to_pylist(),
                                                    rows.column("blocked").to_pylist(), strict=True)]
        return ItemCatalogue(rows.column("item_id").to_pylist(), AttributeArrays.from_values(
            rows.column("category").to_pylist(), rows.column("brand").to_pylist(), rows.column("price").to_pylist(),
            statuses))


SIMILAR_COLUMNS = "item_id, similar_id, score, rank"
HISTORY_COLUMNS = "user_id, item_id, last_ts, owned_ts"


def model_from_tables(version: str, tables: dict[str, pa.Table], num_features: int,
                      catalogue: ItemCatalogue | None = None) -> FactorModel:
    """A FactorModel from the Arrow tables of one version's batch outputs, keyed by contract table name.

    Serving (read from Delta) and the offline evaluation (the batch outputs it has just computed) both
    build their model here, so the evaluation ranks with exactly what serving would load.
    """
    # Sorted by id: the same rows in the same order however the tables were read, so ties rank alike.
    users = _sorted(tables[USER_FACTORS.name], "user_id")
    items = _sorted(tables[ITEM_FACTORS.name], "item_id")
    if items.num_rows == 0:
        raise LookupError(f"model version {version} has no item factors")
    check_factor_dimensions(version, users.column("factors"), items.column("factors"))
    segments: dict[str, list[str]] = {}
    popular = tables.get(POPULAR_ITEMS.name)
    if popular is not None and popular.num_rows:
        popular = _sorted(popular, "segment", "rank")
        for segment, item in zip(popular.column("segment").to_pylist(), popular.column("item_id").to_pylist(),
                                 strict=True):
            segments.setdefault(segment, []).append(item)
    return FactorModel(
        version=version,
        user_ids={u: i for i, u in enumerate(users.column("user_id").to_pylist())},
        user_factors=factor_matrix(users.column("factors")),
        item_ids=items.column("item_id").to_pylist(),
        item_factors=factor_matrix(items.column("factors")),
        popularity=np.asarray(items.column("popularity").to_numpy(), dtype=np.float32),
        segment_popular=segments,
        content=_content(tables.get(ITEM_CONTENT.name), num_features),
        catalogue=catalogue,
        similar=_similar(tables.get(SIMILAR_ITEMS.name)),
        history=_history(tables.get(USER_HISTORY.name)),
        user_candidates=_user_candidates(tables.get(USER_CANDIDATES.name), users.column("user_id"),
                                         items.column("item_id")),
    )


def _user_candidates(rows: pa.Table | None, user_ids, item_ids) -> Ragged | None:
    """USER_CANDIDATES as lists of item rows per row of the (sorted) user factors; Arrow lookups, no Python loop."""
    if rows is None or rows.num_rows == 0:
        return None
    rows = _sorted(rows, "user_id")
    user_row = np.asarray(pc.index_in(rows.column("user_id"), value_set=user_ids.combine_chunks()).to_numpy(
        zero_copy_only=False))
    lists = rows.column("items").combine_chunks()
    flat = pc.cast(pc.list_flatten(lists), pa.string())
    item_row = np.asarray(pc.fill_null(pc.index_in(flat, value_set=pc.cast(item_ids.combine_chunks(), pa.string())),
                                       -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    offsets = np.asarray(lists.offsets.to_numpy(), dtype=np.int64) - lists.offsets[0].as_py()
    per_user: list[np.ndarray] = [np.zeros(0, dtype=np.int32)] * len(user_ids)
    for n, row in enumerate(user_row.tolist()):
        if row is not None and not np.isnan(row):
            found = item_row[offsets[n]:offsets[n + 1]]
            per_user[int(row)] = found[found >= 0]
    return Ragged.from_lists(per_user)


def _sorted(table: pa.Table, *keys: str) -> pa.Table:
    """The table sorted by the keys. delta-rs answers string_view columns (and lists of them), which Arrow can
    neither sort nor take from: those are cast to plain strings first."""
    for i, f in enumerate(table.schema):
        plain = _without_views(f.type)
        if plain != f.type:
            table = table.set_column(i, f.name, pc.cast(table.column(i), plain))
    return table.sort_by([(key, "ascending") for key in keys])


def _without_views(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_without_views(kind.value_type))
    return kind


def _codes(rows: pa.Table, columns: tuple[str, str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Two string columns encoded with one shared vocabulary by Arrow (millions of rows, no Python loop)."""
    ids = pa.chunked_array([pc.cast(rows.column(c).combine_chunks(), pa.string()) for c in columns]).combine_chunks()
    encoded = pc.dictionary_encode(ids)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return encoded.dictionary.to_pylist(), codes[:rows.num_rows], codes[rows.num_rows:]


def _similar(rows: pa.Table | None) -> SimilarItems | None:
    """The version's similar-items pairs as CSR arrays."""
    if rows is None or rows.num_rows == 0:
        return None
    rows = _sorted(rows, "item_id", "rank", "similar_id")  # the same codes in every worker (shared_model)
    vocabulary, items, similar = _codes(rows, ("item_id", "similar_id"))
    return SimilarItems.build(vocabulary, items, similar, rows.column("score").to_numpy(),
                              rows.column("rank").to_numpy())


def _epoch_s(column) -> np.ndarray:
    """A timestamp column as float epoch seconds, NaN for nulls."""
    values = pc.cast(column.combine_chunks() if hasattr(column, "combine_chunks") else column, pa.timestamp("us"))
    micros = pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
    micros[~np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
    return micros / 1e6


def _history(rows: pa.Table | None) -> UserHistory | None:
    if rows is None or rows.num_rows == 0:
        return None
    rows = _sorted(rows, "user_id", "item_id")  # the same codes in every worker (shared_model)
    vocabulary, users, items = _codes(rows, ("user_id", "item_id"))
    return UserHistory.build(vocabulary, vocabulary, users, items, _epoch_s(rows.column("last_ts")),
                             _epoch_s(rows.column("owned_ts")))


def _content(rows: pa.Table | None, num_features: int) -> ContentProfiles | None:
    if rows is None or rows.num_rows == 0:
        return None
    rows = _sorted(rows, "item_id")
    indices, weights = rows.column("indices").combine_chunks(), rows.column("weights").combine_chunks()
    indptr = np.asarray(indices.offsets.to_numpy(), dtype=np.int64) - indices.offsets[0].as_py()
    matrix = sparse.csr_matrix(
        (np.asarray(pc.list_flatten(weights).to_numpy(zero_copy_only=False), dtype=np.float32),
         np.asarray(pc.list_flatten(indices).to_numpy(zero_copy_only=False), dtype=np.int32), indptr),
        shape=(rows.num_rows, num_features))
    return ContentProfiles(rows.column("item_id").to_pylist(), matrix)
