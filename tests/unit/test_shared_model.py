"""One copy of a model version per machine: memory-mapped arrays and index, shared by workers and swaps."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

from recsys.config import PROJECT_ROOT
from recsys.serving.merge import rank_items
from recsys.serving.model_cache import ModelCache
from recsys.serving.results import RecommendationQuery
from recsys.stores import shared_model
from recsys.stores.model_store import ContentProfiles
from recsys.stores.retrieval_index import HnswIndex
from recsys.stores.shared_ids import SharedIdIndex, SharedIds
from recsys.stores.shared_model import folder_of, is_shared, memmap_of, share_model
from tests.unit.test_candidates import SETTINGS, serving, shop, shoppers

pytestmark = pytest.mark.unit


def test_a_shared_model_reads_mapped_files_and_ranks_as_the_loaded_one(tmp_path):
    cfg = serving(ann={"exact_below": 0})  # an HNSW index file too
    loaded, shared = shop(), share_model(shop(), cfg.retrieval, tmp_path)
    for array in (shared.item_factors, shared.user_factors, shared.item_norms, shared.popularity_score,
                  shared.attributes.category, shared.similar.scores, shared.retrieval.popular):
        assert is_shared(array) and not array.flags.writeable
    assert not is_shared(loaded.item_factors)
    assert isinstance(shared.retrieval.items, HnswIndex)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (folder / "items.usearch").is_file()
    exact = serving()  # exact search: the mapped arrays must rank exactly as the loaded ones do
    mapped = share_model(shop(), exact.retrieval, tmp_path / "exact")
    query = RecommendationQuery(k=10, explain=True)
    for shopper in shoppers(loaded, 8):
        ours = rank_items(mapped, exact, SETTINGS.serving.merge, shopper, query, 1e9)
        assert ours.items == rank_items(loaded, exact, SETTINGS.serving.merge, shopper, query, 1e9).items


def test_a_second_worker_maps_the_files_the_first_wrote(tmp_path):
    cfg = serving().retrieval
    first = share_model(shop(), cfg, tmp_path)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    second = share_model(shop(), cfg, tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written
    assert np.shares_memory(first.item_factors, first.item_factors) and is_shared(second.item_factors)
    assert memmap_of(first.item_factors).filename == memmap_of(second.item_factors).filename  # one file, mapped twice


class Store:
    def __init__(self, models):
        self.models, self.version = models, "cand"

    def current_version(self):
        return self.version

    def load(self, version, extras=True):
        return dataclasses.replace(self.models[version])


def test_a_swap_maps_the_new_version_beside_the_old_one_without_copying(tmp_path):
    cfg = serving().retrieval
    old = shop()
    new = dataclasses.replace(shop(seed=6), version="cand2")
    store = Store({"cand": old, "cand2": new})
    cache = ModelCache(store, 0.0, lambda model: share_model(model, cfg, tmp_path))
    before = cache.get()
    store.version = "cand2"
    after = cache.get()
    assert (before.version, after.version) == ("cand", "cand2")
    assert is_shared(before.item_factors) and is_shared(after.item_factors)
    assert memmap_of(before.item_factors).filename != memmap_of(after.item_factors).filename
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_the_id_vocabularies_are_mapped_and_answer_as_the_loaded_dicts(tmp_path):
    loaded = shop()
    model = dataclasses.replace(shop(), content=ContentProfiles(loaded.item_ids[::-1], sparse.identity(
        len(loaded.item_ids), dtype=np.float32, format="csr")))
    expected = dataclasses.replace(loaded, content=model.content)
    shared = share_model(model, serving().retrieval, tmp_path)
    assert isinstance(shared.all_item_ids, SharedIds) and isinstance(shared.user_ids, SharedIdIndex)
    assert list(shared.all_item_ids) == expected.all_item_ids and list(shared.item_ids) == expected.item_ids
    for ours, theirs in ((shared.all_index, expected.all_index), (shared.item_index, expected.item_index),
                         (shared.user_ids, expected.user_ids), (shared.content.row, expected.content.row),
                         (shared.similar.row, expected.similar.row)):
        assert isinstance(ours, SharedIdIndex) and dict(ours) == theirs
        assert ours.get("nobody") is None and "nobody" not in ours and ours.get(7) is None
    assert list(shared.similar.vocabulary) == expected.similar.vocabulary
    assert np.array_equal(shared.similar_rows, expected.similar_rows) and is_shared(shared.similar_rows)


def test_a_folder_an_earlier_layout_wrote_is_not_mapped(tmp_path, monkeypatch):
    first = folder_of(tmp_path, shop(), serving().retrieval)
    monkeypatch.setattr(shared_model, "LAYOUT", shared_model.LAYOUT + 1)
    assert folder_of(tmp_path, shop(), serving().retrieval) != first


FINGERPRINT_OF_A_TUNED_SHOP = """
import dataclasses
from recsys.stores.shared_model import fingerprint
from tests.unit.test_candidates import SETTINGS, serving, shop
weights = SETTINGS.serving.merge.model_copy(update={"factors": 0.5, "item_knn": 1.0, "popularity": 0.3})
tuned = dataclasses.replace(shop(500), merge=weights)
print(fingerprint(tuned, serving().retrieval))
"""


def test_two_processes_give_a_tuned_version_one_fingerprint():
    """Each worker's reader is its own process, with its own string hashing: the same version must still name
    the same folder, or every worker maps a copy of its own (a tuned version's merge weights did that)."""
    prints = {subprocess.run([sys.executable, "-c", FINGERPRINT_OF_A_TUNED_SHOP], capture_output=True, text=True,
                             check=True, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
              for seed in ("1", "2", "3")}
    assert len(prints) == 1 and len(prints.pop()) == 16
