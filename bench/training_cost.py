"""Time and peak memory of train + evaluate: Spark ALS against the `implicit` library, on synthetic events.

For each size, a preparation step (not measured) generates the shop, builds interactions with the
production code and writes the per-user 75/25 split to Parquet. Then each engine runs in its own
process and the parent samples the resident memory of that process tree (for Spark: Python driver,
JVM and Python workers together) while it fits ALS on the train split, recommends k for every user and
scores NDCG@k on the test split. Prints one row per engine and size, and the Spark/implicit ratios.

    .venv/bin/python bench/training_cost.py --events 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

from recsys.config import PROJECT_ROOT

OUT = PROJECT_ROOT / ".local" / "bench" / "training-cost"
RANK, ITERATIONS, ALPHA, SPARK_REG, IMPLICIT_REG, K = 64, 10, 2.0, 0.3, 0.05, 10


def prepare(n_events: int) -> Path:
    """Synthetic shop -> interactions -> per-user 75/25 split as Parquet (skipped when already there)."""
    from pyspark.sql import functions as F

    from recsys.batch.interactions import build_interactions
    from recsys.batch.splits import split_per_user
    from recsys.config import get_settings
    from recsys.data.synthetic import SyntheticShopSpec, generate_shop
    from recsys.spark.session import get_spark

    folder = OUT / f"{n_events}"
    if (folder / "_done").exists():
        return folder
    settings = get_settings()
    spark = get_spark(settings, "bench-cost-prepare")
    spec = SyntheticShopSpec(n_users=max(1000, n_events // 50), n_items=max(500, n_events // 200), n_events=n_events)
    shop = generate_shop(spec, progress=True)
    # Through Parquet rather than from pandas: 10M rows would not fit the driver's heap in one Arrow batch.
    folder.mkdir(parents=True, exist_ok=True)
    shop.events.to_parquet(folder / "events.parquet", index=False)
    del shop
    events = spark.read.parquet(str(folder / "events.parquet"))
    interactions = build_interactions(events, settings.events, F.current_timestamp())
    train, test = split_per_user(interactions, 0.25, "random", 7)
    train.write.mode("overwrite").parquet(str(folder / "train"))
    test.write.mode("overwrite").parquet(str(folder / "test"))
    spark.stop()
    (folder / "_done").touch()
    return folder


def run_spark(folder: Path) -> dict:

    from recsys.batch.als import fit_als, recommend_all
    from recsys.batch.ranking_metrics import HeldOut, score_candidates
    from recsys.config import get_settings
    from recsys.spark.session import get_spark

    settings = get_settings()
    spark = get_spark(settings, "bench-cost-spark")
    spark.sparkContext.setCheckpointDir(settings.checkpoint_path("bench-cost"))
    train = spark.read.parquet(str(folder / "train")).persist()
    test = spark.read.parquet(str(folder / "test"))
    held = HeldOut.build(train, test, K)
    als = settings.als.model_copy(update={"rank": RANK, "max_iter": ITERATIONS, "alpha": ALPHA,
                                          "reg_param": SPARK_REG})
    return {"ndcg": score_candidates(recommend_all(fit_als(train, als), held.fetch), held)["ndcg"],
            "interactions": train.count()}


def run_implicit(folder: Path) -> dict:
    import numpy as np
    import pandas as pd
    from implicit.als import AlternatingLeastSquares
    from scipy import sparse
    from threadpoolctl import threadpool_limits

    from recsys.batch.reference_metrics import mean_metrics

    train = pd.read_parquet(folder / "train", columns=["user_id", "item_id", "strength"])
    test = pd.read_parquet(folder / "test", columns=["user_id", "item_id"])
    users, u = np.unique(train["user_id"], return_inverse=True)
    items, i = np.unique(train["item_id"], return_inverse=True)
    matrix = sparse.csr_matrix((train["strength"].to_numpy(np.float32), (u, i)), shape=(len(users), len(items)))
    model = AlternatingLeastSquares(factors=RANK, regularization=IMPLICIT_REG, alpha=ALPHA, iterations=ITERATIONS,
                                    random_state=42)
    with threadpool_limits(1, "blas"):
        model.fit(matrix, show_progress=False)
    ids, _ = model.recommend(np.arange(len(users)), matrix, N=K, filter_already_liked_items=True)
    rankings = {user: items[row[row >= 0]].tolist() for user, row in zip(users, ids, strict=True)}
    truth = test.groupby("user_id")["item_id"].agg(set).to_dict()
    return {"ndcg": mean_metrics(rankings, truth, K)["ndcg"], "interactions": len(train)}


def measure(engine: str, folder: Path) -> dict:
    """Run one engine in a child process; wall time and the peak RSS of its whole process tree."""
    started = time.time()
    child = subprocess.Popen([sys.executable, __file__, "--engine", engine, "--folder", str(folder)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=PROJECT_ROOT)
    root, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out = child.stdout.read().strip().splitlines()
    if child.returncode != 0 or not out:
        raise RuntimeError(f"{engine} failed with exit code {child.returncode}")
    return {**json.loads(out[-1]), "seconds": time.time() - started, "peak_mb": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engine", choices=["spark", "implicit"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:  # the measured child
        print(json.dumps((run_spark if args.engine == "spark" else run_implicit)(args.folder)))
        return
    print(f"ALS rank {RANK}, {ITERATIONS} iterations, alpha {ALPHA}; k={K}; time = process start to score")
    print(f"{'events':>10} {'interactions':>13} {'engine':<9}{'seconds':>9}{'peak MB':>9}{'NDCG@k':>8}")
    for n in args.events:
        folder = prepare(n)
        rows = {engine: measure(engine, folder) for engine in ("spark", "implicit")}
        for engine, r in rows.items():
            print(f"{n:>10} {r['interactions']:>13} {engine:<9}{r['seconds']:9.1f}{r['peak_mb']:9.0f}{r['ndcg']:8.4f}")
        s, i = rows["spark"], rows["implicit"]
        print(f"{n:>10} {'':>13} {'ratio':<9}{s['seconds'] / i['seconds']:9.1f}{s['peak_mb'] / i['peak_mb']:9.1f}")


if __name__ == "__main__":
    main()
