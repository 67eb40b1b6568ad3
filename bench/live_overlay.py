"""What a change to the live catalogue costs one API worker: CPU per rebuild and the memory it keeps.

Builds a synthetic model of --items x --rank with a catalogue, shares it as the API does (memory-mapped files
under a temporary serving.retrieval.cache_dir, recsys.stores.shared_model), then lays live changes over it
with recsys.serving.live_model.overlay, which every worker runs when the live catalogue version or the live
item-vector counter moves (it polls them every serving.catalogue_poll_s). For each kind of change it prints
the CPU seconds of one rebuild, the anonymous memory the worker holds on to while it serves the result (the
batch model stays loaded beside it, as in ModelCache), and whether the item factors are still the machine's
one shared copy. The size of that copy is printed for scale.

    .venv/bin/python bench/live_overlay.py                          # 100k and 1M items x 64
    .venv/bin/python bench/live_overlay.py --smoke                  # tiny, seconds: what the CI smoke test runs
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import sparse
from serving_load import smaps

from recsys.config import Settings, load_settings
from recsys.demo.synthetic_model import make_model
from recsys.serving.live_model import overlay
from recsys.stores.attribute_arrays import ItemCatalogue
from recsys.stores.model_store import ContentProfiles, FactorModel
from recsys.stores.shared_model import is_shared, return_freed_memory, share_model

BRANDS = 50
TOKENS = 8  # hashed features per content profile


def anonymous_mb() -> float:
    """This process's anonymous memory after a collection and giving freed pages back, as a worker does after a
    load (shared_model.return_freed_memory)."""
    gc.collect()
    return_freed_memory()
    return smaps(os.getpid())["Anonymous"] / 1024


def profiles(n_items: int, num_features: int, rng: np.random.Generator) -> sparse.csr_matrix:
    """Unit rows of TOKENS hashed features each, as the batch layer's content profiles look."""
    indices = rng.integers(0, num_features, (n_items, TOKENS), dtype=np.int32)
    values = np.full(n_items * TOKENS, 1 / np.sqrt(TOKENS), dtype=np.float32)
    return sparse.csr_matrix((values, indices.ravel(), np.arange(0, n_items * TOKENS + 1, TOKENS, dtype=np.int64)),
                             shape=(n_items, num_features))


def shared_model(settings: Settings, n_items: int, rank: int, new_share: float, cache_dir: Path) -> FactorModel:
    """n_items catalogue items with content profiles, of which the last new_share have no factors yet (the
    batch new items)."""
    synthetic = make_model("bench.live", 1000, n_items, rank, 40)
    catalogue = ItemCatalogue.from_rows({item: (category, f"b{n % BRANDS}", 10.0 + n % 90)
                                         for n, (item, category) in enumerate(zip(synthetic.item_ids,
                                                                                  synthetic.categories, strict=True))})
    n_als = n_items - int(n_items * new_share)
    content = ContentProfiles(list(synthetic.item_ids),
                              profiles(n_items, settings.content.num_features, np.random.default_rng(5)))
    model = FactorModel(synthetic.version, {u: i for i, u in enumerate(synthetic.user_ids)},
                        synthetic.user_factors, list(synthetic.item_ids[:n_als]), synthetic.item_factors[:n_als],
                        np.ones(n_als, dtype=np.float32), catalogue=catalogue, content=content)
    retrieval = settings.serving.retrieval
    # The exact index: this bench measures the overlay, not an HNSW build over a million items.
    retrieval = retrieval.model_copy(update={"ann": retrieval.ann.model_copy(update={"exact_below": n_items + 1})})
    return share_model(model, retrieval, cache_dir)


def copy_mb(cache_dir: Path) -> float:
    return sum(f.stat().st_size for f in cache_dir.rglob("*.npy")) / 2**20


def measure(base: FactorModel, change: Callable[[], FactorModel]) -> tuple[float, float, FactorModel]:
    """(CPU seconds, anonymous MB added, the rebuilt model) of one rebuild, the base model kept alive."""
    before = anonymous_mb()
    started = time.process_time()
    rebuilt = change()
    cpu = time.process_time() - started
    return cpu, anonymous_mb() - before, rebuilt


def run(settings: Settings, n_items: int, rank: int, n_live: int, new_share: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = shared_model(settings, n_items, rank, new_share, Path(folder))
        print(f"\n{n_items:,} items x {rank} ({base.n_items:,} with factors, every one with a content profile): one "
              f"shared copy of the version's arrays {copy_mb(Path(folder)):.1f} MB; worker anonymous memory with it "
              f"loaded {anonymous_mb():.0f} MB")
        rng = np.random.default_rng(3)
        known = {base.item_ids[i]: {"price": 9.99} for i in rng.choice(base.n_items, n_live, replace=False).tolist()}
        new = {f"live{i}": {"category": "c1", "brand": "b1", "price": 20.0, "title": f"Live item {i}"}
               for i in range(n_live)}
        vectors = {item: rng.normal(0, 0.1, rank).astype(np.float32) for item in new}
        waiting = base.all_item_ids[base.n_items:]  # batch new items: the speed layer folds their first vectors
        first = {waiting[i]: rng.normal(0, 0.1, rank).astype(np.float32)
                 for i in rng.choice(len(waiting), min(n_live, len(waiting)), replace=False).tolist()}
        kinds = {
            f"price change of {n_live} known items": lambda: overlay(base, known, {}, settings.content),
            f"{n_live} new items (content only)": lambda: overlay(base, new, {}, settings.content),
            f"{n_live} new items with live vectors": lambda: overlay(base, new, vectors, settings.content),
            f"live vectors of {len(first)} batch new items": lambda: overlay(base, {}, first, settings.content),
        }
        for name, change in kinds.items():
            cpu, added, rebuilt = measure(base, change)
            print(f"  {name:<40} rebuild cpu {cpu:7.3f} s   anonymous +{added:7.1f} MB   "
                  f"item factors shared: {'yes' if is_shared(rebuilt.item_factors) else 'no'}")
            del rebuilt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="catalogue sizes (items)")
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--live", type=int, default=5, help="items each change touches")
    parser.add_argument("--new-share", type=float, default=0.2,
                        help="share of the catalogue without factors yet (content profile only)")
    parser.add_argument("--smoke", action="store_true", help="tiny catalogue, seconds: what the CI smoke test runs")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.rank = "2000", 8
    settings = load_settings()  # RECSYS_ENV's configuration, as the API would serve with it
    print(f"live catalogue overlay: rebuild cost per worker (each worker repeats it; it polls every "
          f"serving.catalogue_poll_s = {settings.serving.catalogue_poll_s} s)")
    for size in (int(s) for s in args.sizes.split(",")):
        run(settings, size, args.rank, args.live, args.new_share)


if __name__ == "__main__":
    main()
