"""One copy of a model version per machine: its arrays and index in memory-mapped files, shared by the workers.

Every API worker loads the published version from Delta, but keeps none of the big arrays it read: the
first worker to get there writes them (factors, norms, popularity, catalogue codes, the CSR arrays of the
content profiles, similar-items and history, the retrieval lists and the usearch index) as .npy files under
serving.retrieval.cache_dir, in a folder named by the version and a fingerprint of its content; every worker
then maps those files read-only (np.load(mmap_mode="r"), usearch view=True). The pages live once in the page
cache whatever the number of workers, and a swap maps the new version's files beside the old ones, so it never
doubles anonymous memory: the old version's pages are dropped with its last reference. A file lock lets one
worker write while the others wait, and a folder appears only complete (written under a temporary name, then
renamed).
"""

from __future__ import annotations

import copy
import ctypes
import fcntl
import hashlib
import io
import logging
import os
import pickle
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from recsys.config import RetrievalConfig
from recsys.sequence.gru import GruWeights
from recsys.stores.model_store import FactorModel
from recsys.stores.retrieval_index import ExactIndex, HnswIndex, Ragged, RetrievalIndex
from recsys.stores.shared_ids import SharedIdIndex, SharedIds, digest_ids, write_ids

log = logging.getLogger(__name__)
INDEX_FILE = "items.usearch"
SKELETON_FILE = "model.pickle"  # the model's other fields (_skeleton)
LAYOUT = 2  # of a version's folder: a folder an earlier release wrote is never mapped as this one's
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def _top_per_code(codes: np.ndarray, score: np.ndarray, n_codes: int, m: int) -> Ragged:
    """Per code, the m rows with the highest score (ties by row); UNKNOWN (negative) codes are left out."""
    order = np.lexsort((-score, codes))
    grouped = codes[order]
    order, grouped = order[grouped >= 0], grouped[grouped >= 0]
    starts = np.searchsorted(grouped, np.arange(n_codes))
    ends = np.minimum(np.searchsorted(grouped, np.arange(n_codes), side="right"), starts + m)
    return Ragged.from_lists([order[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)])


def build_retrieval(model: FactorModel, cfg: RetrievalConfig, index: object | None = None) -> RetrievalIndex:
    """The version's candidate structures in memory (`index`: an item index already built or viewed)."""
    attributes, score = model.attributes, model.popularity_score
    if index is None:
        index = (HnswIndex.build(model.item_factors, cfg.ann) if model.n_items >= max(cfg.ann.exact_below, 1)
                 else ExactIndex(model.item_factors, model.inverse_norms))
    popular = np.lexsort((np.arange(score.size), -score))[:cfg.popular].astype(np.int32)
    return RetrievalIndex(index, _top_per_code(attributes.category, score, len(attributes.category_names),
                                               cfg.per_attribute),
                          _top_per_code(attributes.brand, score, len(attributes.brand_names), cfg.per_attribute),
                          popular, _category_means(model))


def _category_means(model: FactorModel) -> np.ndarray:
    """Mean factor vector of each category's ALS items (zeros for a category without any)."""
    codes = np.asarray(model.attributes.category[:model.n_items])
    n, rank = len(model.attributes.category_names), model.item_factors.shape[1]
    known = codes >= 0
    sums = np.zeros((n, rank), dtype=np.float64)
    np.add.at(sums, codes[known], model.item_factors[known])
    counts = np.maximum(np.bincount(codes[known], minlength=n), 1)
    return (sums / counts[:, None]).astype(np.float32)


def ensure_retrieval(model: FactorModel, cfg: RetrievalConfig) -> RetrievalIndex:
    """The model's candidate structures, built in memory on first use when the model was not shared (the offline
    evaluation and tuning trials): those search exactly, as building an index per trial costs more than it saves."""
    if model.retrieval is None:
        exact = ExactIndex(model.item_factors, model.inverse_norms)
        object.__setattr__(model, "retrieval", build_retrieval(model, cfg, exact))
    return model.retrieval  # type: ignore[return-value]  # set above


# Arrays aligned to the factor rows: their files keep cfg.live_rows spare rows after the model's, which a worker
# fills with live item vectors on a copy-on-write map of the same file (grown_rows) instead of copying them.
GROWN = ("item_factors", "item_norms", "inverse_norms")


def _targets(model: FactorModel) -> Iterator[tuple[str, object, str]]:
    """(file name, object, attribute) of every array worth sharing."""
    for name in ("item_factors", "user_factors", "item_norms", "inverse_norms", "popularity_score"):
        yield name, model, name
    for name in ("category", "brand", "price"):
        yield f"attributes.{name}", model.attributes, name
    if model.similar is not None:
        for name in ("indptr", "neighbours", "scores"):
            yield f"similar.{name}", model.similar, name
    if model.history is not None:
        for name in ("indptr", "codes", "last_s", "owned_s"):
            yield f"history.{name}", model.history, name
    if model.user_candidates is not None:
        for name in ("indptr", "rows"):
            yield f"user_candidates.{name}", model.user_candidates, name
    for part, profiles in (("content", None if model.content is None else model.content.matrix),
                           ("fresh_profiles", model.fresh_profiles)):
        if profiles is not None:  # csr: the profiles of every catalogue item, and of the new ones
            for name in ("data", "indices", "indptr"):
                yield f"{part}.{name}", profiles, name


def _vocabularies(model: FactorModel) -> Iterator[tuple[str, Sequence[str]]]:
    """(file name, ids in row order) of every id vocabulary worth sharing (shared_ids)."""
    yield "ids.items", model.all_item_ids
    users: list[str] = [""] * len(model.user_ids)
    for user, row in model.user_ids.items():
        users[row] = user
    yield "ids.users", users
    if model.content is not None:
        yield "ids.content", model.content.item_ids
    if model.similar is not None:
        yield "ids.similar", model.similar.vocabulary
    if model.history is not None:
        yield "ids.history.users", model.history.users
        yield "ids.history.items", model.history.items


def _map_vocabularies(model: FactorModel, mapped: dict[str, np.ndarray], n: int) -> None:
    """Swap the model's id lists and dicts for the mapped vocabularies."""
    def vocabulary(name: str) -> tuple[SharedIds, SharedIdIndex]:
        data, offsets = mapped[f"{name}.bytes"], mapped[f"{name}.offsets"]
        return SharedIds(data, offsets), SharedIdIndex(data, offsets, mapped[f"{name}.slots"])

    set_ = object.__setattr__
    ids, index = vocabulary("ids.items")
    for attribute, value in (("all_item_ids", ids), ("item_ids", ids.prefix(n)), ("all_index", index),
                             ("item_index", index.below(n)), ("user_ids", vocabulary("ids.users")[1])):
        set_(model, attribute, value)
    owners = [("ids.content", model.content, "item_ids", "row"), ("ids.similar", model.similar, "vocabulary", "row"),
              ("ids.history.users", model.history, "users", "row"), ("ids.history.items", model.history, "items", None)]
    for name, owner, ids_attribute, index_attribute in owners:
        if owner is not None:
            ids, index = vocabulary(name)
            set_(owner, ids_attribute, ids)
            if index_attribute is not None:
                set_(owner, index_attribute, index)


def _retrieval_targets(retrieval: RetrievalIndex) -> Iterator[tuple[str, object, str]]:
    yield "retrieval.popular", retrieval, "popular"
    yield "retrieval.category_means", retrieval, "category_means"
    for part in ("by_category", "by_brand"):
        for name in ("indptr", "rows"):
            yield f"retrieval.{part}.{name}", getattr(retrieval, part), name


# Objects that own shared arrays or vocabularies, by path from the model: the skeleton holds a copy of each.
_OWNERS = ("attributes", "content", "content.matrix", "fresh_profiles", "similar", "history", "user_candidates")
_VOCABULARY_FIELDS = {"": ("all_item_ids", "item_ids", "all_index", "item_index", "user_ids"),
                      "content": ("item_ids", "row"), "similar": ("vocabulary", "row"),
                      "history": ("users", "row", "items")}


def _skeleton(model: FactorModel) -> bytes:
    """The model without what its folder holds (arrays, vocabularies, index) or the worker reads itself (the
    sequence weights, memory-mapped from their own file), pickled: the few fields left, a few MB at most. The
    model itself is not changed."""
    top = copy.copy(model)
    for path in _OWNERS:
        *parents, leaf = path.split(".")
        parent = top
        for name in parents:
            parent = getattr(parent, name)
        if parent is not None and getattr(parent, leaf) is not None:
            object.__setattr__(parent, leaf, copy.copy(getattr(parent, leaf)))
    for _, owner, attribute in _targets(top):
        object.__setattr__(owner, attribute, None)
    for path, names in _VOCABULARY_FIELDS.items():
        owner = getattr(top, path) if path else top
        for name in names if owner is not None else ():
            object.__setattr__(owner, name, None)
    for name in ("retrieval", "sequence", "catalogue"):
        object.__setattr__(top, name, None)
    top.__dict__.pop("similar_rows", None)
    top.__dict__.pop("sequence_rows", None)
    top.__dict__.pop("fold_in", None)
    out = io.BytesIO()
    _StablePickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump((model.n_items, top))
    return out.getvalue()


class _StablePickler(pickle.Pickler):
    """Pickles pydantic models (the tuned merge weights) as their class and field values. Their own pickle holds
    the set of fields set, whose order follows the per-process string hash: the same version read by two
    workers' readers got two fingerprints, and so two folders and two copies in memory."""

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, BaseModel):
            return type(obj).model_validate, (obj.model_dump(),)
        return NotImplemented


def fingerprint(model: FactorModel, cfg: RetrievalConfig, skeleton: bytes | None = None) -> str:
    """A short hash of the version's arrays, ids, other fields and the retrieval settings: a rewritten version
    (or another lake's version of the same name, or the same one over a changed catalogue) never maps another's
    files."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{LAYOUT}:{model.version}".encode())
    digest.update(cfg.model_dump_json(exclude={"mode", "sources"}).encode())
    digest.update(skeleton if skeleton is not None else _skeleton(model))
    for name, owner, attribute in _targets(model):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(getattr(owner, attribute)).view(np.uint8).data)
    for name, ids in _vocabularies(model):
        digest.update(name.encode())
        digest.update(digest_ids(ids))
    return digest.hexdigest()


def version_folder_prefix(version: str) -> str:
    """The start of every folder name of `version` under the cache (a safe file name)."""
    return _UNSAFE.sub("_", version)


def folder_of(root: Path, model: FactorModel, cfg: RetrievalConfig, skeleton: bytes | None = None) -> Path:
    return root / f"{version_folder_prefix(model.version)}-{fingerprint(model, cfg, skeleton)}"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between the processes of this machine (flock on `path`, created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(folder: Path, model: FactorModel, cfg: RetrievalConfig, skeleton: bytes) -> None:
    """Every shared array, vocabulary and the index, and the skeleton, written under a temporary name and renamed
    into place complete."""
    temporary = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    retrieval = build_retrieval(model, cfg)
    for name, owner, attribute in (*_targets(model), *_retrieval_targets(retrieval)):
        array = getattr(owner, attribute)
        if name in GROWN and cfg.live_rows:
            spare = np.lib.format.open_memmap(temporary / f"{name}.npy", mode="w+", dtype=array.dtype,
                                              shape=(len(array) + cfg.live_rows, *array.shape[1:]))
            spare[:len(array)] = array
            spare.flush()
            del spare
        else:
            np.save(temporary / f"{name}.npy", np.ascontiguousarray(array))
    for name, ids in _vocabularies(model):
        write_ids(temporary, name, ids)
    if model.similar is not None:  # rows_of its vocabulary, once: over mapped ids each worker would walk it
        np.save(temporary / "similar_rows.npy", model.similar_rows)
    if isinstance(retrieval.items, HnswIndex):
        retrieval.items.save(temporary / INDEX_FILE)
    (temporary / SKELETON_FILE).write_bytes(skeleton)
    os.replace(temporary, folder)


def write_shared(model: FactorModel, cfg: RetrievalConfig, root: Path) -> Path:
    """The folder of the machine's one copy of `model`, written if missing (the caller may drop `model` then)."""
    skeleton = _skeleton(model)
    folder = folder_of(root, model, cfg, skeleton)
    with file_lock(root / f"{folder.name}.lock"):
        if not folder.is_dir():
            _write(folder, model, cfg, skeleton)
    return folder


def attach(folder: Path, cfg: RetrievalConfig, sequence: GruWeights | None = None) -> FactorModel:
    """The model of a folder write_shared wrote: its skeleton with every array, vocabulary and the index mapped
    read-only; `sequence` is the version's sequence weights (mapped from their own file)."""
    n_items, model = pickle.loads((folder / SKELETON_FILE).read_bytes())
    # Plain ndarray views of the maps: indexing an np.memmap builds a memmap per slice (__array_finalize__),
    # about a millisecond per request; the view still reads the mapped pages (is_shared follows .base).
    mapped = {path.stem: np.load(path, mmap_mode="r").view(np.ndarray) for path in folder.glob("*.npy")}
    for name, owner, attribute in _targets(model):
        object.__setattr__(owner, attribute, mapped[name][:n_items] if name in GROWN else mapped[name])
    _map_vocabularies(model, mapped, n_items)
    if model.similar is not None:
        model.__dict__["similar_rows"] = mapped["similar_rows"]  # the cached_property's value
    index = (HnswIndex.view(folder / INDEX_FILE, cfg.ann) if (folder / INDEX_FILE).exists()
             else ExactIndex(model.item_factors, model.inverse_norms))
    retrieval = RetrievalIndex(index, Ragged(mapped["retrieval.by_category.indptr"],
                                             mapped["retrieval.by_category.rows"]),
                               Ragged(mapped["retrieval.by_brand.indptr"], mapped["retrieval.by_brand.rows"]),
                               mapped["retrieval.popular"], mapped["retrieval.category_means"])
    object.__setattr__(model, "retrieval", retrieval)
    object.__setattr__(model, "sequence", sequence)
    return model


def share_model(model: FactorModel, cfg: RetrievalConfig, root: Path) -> FactorModel:
    """`model` served from the machine's one copy (written if missing): every array and id list a read-only map.
    The loaded model is dropped; its memory is given back to the OS."""
    folder = write_shared(model, cfg, root)
    sequence = model.sequence
    del model
    return_freed_memory()
    return attach(folder, cfg, sequence)


def return_freed_memory() -> None:
    """Give the memory the load freed back to the OS. Reading a version from Delta passes through Arrow's
    allocator and the C heap, which keep freed pages: measured on 100k items x 64 with 50k users, a worker
    stayed about 180 MB larger than it needed after its arrays became maps."""
    pa.default_memory_pool().release_unused()
    with suppress(AttributeError, OSError):  # glibc only; elsewhere the pages stay with the process
        ctypes.CDLL(None).malloc_trim(0)


def memmap_of(array: np.ndarray) -> np.memmap | None:
    """The map `array` reads (None: memory of this process)."""
    base = array
    while base is not None:
        if isinstance(base, np.memmap):
            return base
        base = getattr(base, "base", None)
    return None


def is_shared(array: np.ndarray) -> bool:
    """The array reads a mapped file (a view of an np.memmap), not memory of this process."""
    return memmap_of(array) is not None


def grown_rows(array: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """`array` with the rows of `extra` after it.

    When `array` is the head of a shared file with room after it (GROWN), the result is a new copy-on-write map
    of that file with `extra` written in the spare rows: the rows before stay the machine's shared pages, and
    only the pages written become this worker's. Each call maps afresh, so a request still ranking with an
    earlier result never sees its rows change. Otherwise it is a copy."""
    extra = np.asarray(extra, dtype=array.dtype).reshape(-1, *array.shape[1:])
    mapped = memmap_of(array)
    n = len(array)
    if (mapped is not None and mapped.filename and len(mapped) >= n + len(extra) and array.flags.c_contiguous
            and array.__array_interface__["data"][0] == mapped.__array_interface__["data"][0]):
        grown = np.memmap(mapped.filename, dtype=array.dtype, mode="c", offset=mapped.offset,
                          shape=(n + len(extra), *array.shape[1:]))
        grown[n:] = extra
        return grown.view(np.ndarray)
    if mapped is not None:
        log.warning("%d live rows do not fit in the %d spare rows of %s (serving.retrieval.live_rows): this worker "
                    "copies the array", len(extra), len(mapped) - n, mapped.filename)
    return np.concatenate([array, extra])
