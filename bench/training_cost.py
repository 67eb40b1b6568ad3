"""Time and peak memory of train + evaluate: Spark ALS against the `implicit` library, on synthetic events.

For each size, a preparation step (not measured) generates the shop, builds interactions with the
production code, writes the per-user 75/25 split to Parquet and draws the evaluation's user sample
(evaluation.max_users held-out users, recsys.batch.blocked_topk.sample_users). Then each engine runs in
its own process and the parent samples the resident memory of that process tree (for Spark: Python
driver, JVM and Python workers together) while it fits ALS on the train split, recommends k unseen items
to every sampled user (Spark: the evaluation's blocked top-k; `implicit`: its own recommend) and scores
NDCG@k on their test items. Spark runs as configured (`spark`: conjugate gradient, on the driver up to
als.driver_interactions), with the executors' blocks forced (`spark-blocks`) and with MLlib's ALS
(`spark-mllib`). Prints one row per engine and size with where its time went, and each Spark engine's ratios
to `implicit`.

    .venv/bin/python bench/training_cost.py --events 1000000 10000000
    .venv/bin/python bench/training_cost.py --smoke     # a few thousand events, to check the bench runs (CI)
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

# engine -> the ALS settings it runs with (None: `implicit`). `spark` is the product as configured: conjugate
# gradient, on the driver up to als.driver_interactions; `spark-blocks` forces the executors' blocks.
ENGINES = {"spark": {"solver": "cg"}, "spark-blocks": {"solver": "cg", "driver_interactions": 0},
           "spark-mllib": {"solver": "mllib"}, "implicit": None}

OUT = PROJECT_ROOT / ".local" / "bench" / "training-cost"
RANK, ITERATIONS, ALPHA, SPARK_REG, IMPLICIT_REG, K = 64, 10, 2.0, 0.3, 0.05, 10
SMOKE_EVENTS, SMOKE_RANK, SMOKE_ITERATIONS = 2_000, 4, 2  # checks the bench runs, in seconds


def prepare(spark, settings, n_events: int, out: Path = OUT) -> Path:
    """Synthetic shop -> interactions -> per-user 75/25 split and the user sample as Parquet (skipped when
    already there)."""
    from pyspark.sql import functions as F

    from recsys.batch.blocked_topk import sample_users
    from recsys.batch.interactions import build_interactions
    from recsys.batch.splits import split_per_user
    from recsys.data.synthetic import SyntheticShopSpec, generate_shop

    folder = out / f"{n_events}"
    if (folder / "_done").exists():
        return folder
    spec = SyntheticShopSpec(n_users=max(1000, n_events // 50), n_items=max(500, n_events // 200), n_events=n_events)
    shop = generate_shop(spec, progress=n_events > SMOKE_EVENTS)
    # Through Parquet rather than from pandas: 10M rows would not fit the driver's heap in one Arrow batch.
    folder.mkdir(parents=True, exist_ok=True)
    shop.events.to_parquet(folder / "events.parquet", index=False)
    del shop
    events = spark.read.parquet(str(folder / "events.parquet"))
    interactions = build_interactions(events, settings.events, F.current_timestamp())
    train, test = split_per_user(interactions, 0.25, "random", 7)
    train.write.mode("overwrite").parquet(str(folder / "train"))
    test.write.mode("overwrite").parquet(str(folder / "test"))
    test = spark.read.parquet(str(folder / "test"))
    sample_users(test, settings.evaluation.max_users, settings.evaluation.seed).write.mode("overwrite").parquet(
        str(folder / "users"))
    (folder / "_done").touch()
    return folder


def run_spark(folder: Path, rank: int = RANK, iterations: int = ITERATIONS, als: dict | None = None) -> dict:
    """Spark ALS (the product's, with `als` on top) on the train split, the evaluation's blocked top-k for the
    sampled users, NDCG@k."""
    started = time.time()
    from pyspark.sql import functions as F

    from recsys.batch.als import als_factors
    from recsys.batch.blocked_topk import factor_top_k
    from recsys.batch.ranking_metrics import collected_metrics
    from recsys.config import get_settings
    from recsys.spark.session import get_spark

    settings = get_settings()
    spark = get_spark(settings, "bench-cost-spark")
    spark.sparkContext.setCheckpointDir(settings.checkpoint_path("bench-cost"))
    phases = {"start": time.time() - started}
    train = spark.read.parquet(str(folder / "train")).persist()
    users = spark.read.parquet(str(folder / "users")).persist()
    n = train.count()
    phases["read"] = time.time() - started - sum(phases.values())
    user_factors, item_factors = (f.persist() for f in als_factors(train, settings.als.model_copy(
        update={"rank": rank, "max_iter": iterations, "alpha": ALPHA, "reg_param": SPARK_REG, **(als or {})})))
    item_factors.count()
    phases["fit"] = time.time() - started - sum(phases.values())
    seen = train.join(users, "user_id", "left_semi").groupBy("user_id").agg(F.collect_set("item_id").alias("seen"))
    recs = factor_top_k(user_factors.join(users, "user_id", "left_semi"), item_factors, seen, K,
                        settings.evaluation.driver_top_k_cells).persist()
    recs.count()
    phases["top-k"] = time.time() - started - sum(phases.values())
    truth = (spark.read.parquet(str(folder / "test")).join(users, "user_id", "left_semi").groupBy("user_id")
             .agg(F.collect_list("item_id").alias("label")))
    ndcg = collected_metrics(recs, truth, K, item_factors.count())["ndcg"]
    phases["score"] = time.time() - started - sum(phases.values())
    return {"ndcg": ndcg, "interactions": n, "users": users.count(), "phases": phases}


def run_implicit(folder: Path, rank: int = RANK, iterations: int = ITERATIONS) -> dict:
    """`implicit`'s ALS on the same train split, its recommend for the same sampled users, NDCG@k."""
    started = time.time()
    import numpy as np
    import pandas as pd
    from implicit.als import AlternatingLeastSquares
    from scipy import sparse
    from threadpoolctl import threadpool_limits

    from recsys.batch.reference_metrics import mean_metrics

    phases = {"start": time.time() - started}
    train = pd.read_parquet(folder / "train", columns=["user_id", "item_id", "strength"])
    test = pd.read_parquet(folder / "test", columns=["user_id", "item_id"])
    sampled = pd.read_parquet(folder / "users")["user_id"]
    users, u = np.unique(train["user_id"], return_inverse=True)
    items, i = np.unique(train["item_id"], return_inverse=True)
    matrix = sparse.csr_matrix((train["strength"].to_numpy(np.float32), (u, i)), shape=(len(users), len(items)))
    phases["read"] = time.time() - started - sum(phases.values())
    model = AlternatingLeastSquares(factors=rank, regularization=IMPLICIT_REG, alpha=ALPHA, iterations=iterations,
                                    random_state=42)
    with threadpool_limits(1, "blas"):
        model.fit(matrix, show_progress=False)
    phases["fit"] = time.time() - started - sum(phases.values())
    rows = np.searchsorted(users, sampled.to_numpy())
    ids, _ = model.recommend(rows, matrix[rows], N=K, filter_already_liked_items=True)
    rankings = {user: items[row[row >= 0]].tolist() for user, row in zip(users[rows], ids, strict=True)}
    phases["top-k"] = time.time() - started - sum(phases.values())
    truth = test[test["user_id"].isin(set(sampled))].groupby("user_id")["item_id"].agg(set).to_dict()
    ndcg = mean_metrics(rankings, truth, K)["ndcg"]
    phases["score"] = time.time() - started - sum(phases.values())
    return {"ndcg": ndcg, "interactions": len(train), "users": len(rows), "phases": phases}


def measure(engine: str, folder: Path, rank: int = RANK, iterations: int = ITERATIONS) -> dict:
    """Run one engine in a child process; wall time and the peak RSS of its whole process tree."""
    started = time.time()
    child = subprocess.Popen([sys.executable, __file__, "--engine", engine, "--folder", str(folder),
                              "--rank", str(rank), "--iterations", str(iterations)],
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


def report(rows: dict[int, dict[str, dict]], rank: int = RANK, iterations: int = ITERATIONS) -> str:
    """The table: per size and engine, seconds, peak MB, NDCG@k and where the time went; the ratios; and
    the time per interaction of each engine from the smallest size to the largest."""
    lines = [f"ALS rank {rank}, {iterations} iterations, alpha {ALPHA}; k={K}; time = process start to score",
             f"{'events':>10} {'interactions':>13} {'users':>7} {'engine':<9}{'seconds':>9}{'peak MB':>9}"
             f"{'NDCG@k':>8}  where the time went (s)"]
    for n, engines in rows.items():
        for engine, r in engines.items():
            phases = {**r["phases"], "process": r["seconds"] - sum(r["phases"].values())}
            where = ", ".join(f"{phase} {s:.1f}" for phase, s in phases.items())
            lines.append(f"{n:>10} {r['interactions']:>13} {r['users']:>7} {engine:<9}{r['seconds']:9.1f}"
                         f"{r['peak_mb']:9.0f}{r['ndcg']:8.4f}  {where}")
        i = engines["implicit"]
        for engine in (e for e in engines if e != "implicit"):
            s = engines[engine]
            lines.append(f"{n:>10} {'':>13} {'':>7} {'ratio':<9}{s['seconds'] / i['seconds']:9.1f}"
                         f"{s['peak_mb'] / i['peak_mb']:9.1f}  {engine} / implicit")
    if len(rows) > 1:
        small, large = min(rows), max(rows)
        for engine in rows[small]:
            per = [rows[n][engine]["seconds"] / rows[n][engine]["interactions"] for n in (small, large)]
            lines.append(f"{engine}: time per interaction at {large} events / at {small} = {per[1] / per[0]:.2f}x "
                         "(1.0 = linear)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_EVENTS} events, to check the bench runs")
    parser.add_argument("--rank", type=int, default=RANK, help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=ITERATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--engines", default=",".join(ENGINES), help="engines to run, in this order")
    parser.add_argument("--engine", choices=list(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:  # the measured child
        als = ENGINES[args.engine]
        out = (run_implicit(args.folder, args.rank, args.iterations) if als is None
               else run_spark(args.folder, args.rank, args.iterations, als))
        print(json.dumps(out))
        return
    from recsys.config import get_settings
    from recsys.spark.session import get_spark

    settings = get_settings()
    spark = get_spark(settings, "bench-cost-prepare")
    sizes = [SMOKE_EVENTS] if args.smoke else args.events
    rank, iterations = (SMOKE_RANK, SMOKE_ITERATIONS) if args.smoke else (args.rank, args.iterations)
    folders = {n: prepare(spark, settings, n) for n in sizes}
    spark.stop()
    engines = args.engines.split(",")
    if "implicit" not in engines or not set(engines) <= set(ENGINES):
        sys.exit(f"--engines: some of {sorted(ENGINES)}, implicit among them (the ratios' reference)")
    print(report({n: {engine: measure(engine, folder, rank, iterations) for engine in engines}
                  for n, folder in folders.items()}, rank, iterations))


if __name__ == "__main__":
    main()
