"""The sequence model against the merge's signals on next-item prediction, its training time and its inference.

UCI Online Retail with invoices as sessions (items in invoice-line order); the newest sessions are held out
(sequence.validation_fraction for the signal's weight, sequence.test_fraction for the figures) and each one's
last item is predicted from the rest. Prints HR@10, NDCG@10 and MRR@10 of the GRU model, ALS (the shopper's
taste), item-kNN and recent items' neighbours (ALS cosine), the merged ranking with and without the signal,
training time, and the p99 of one request's inference (session state + 500 candidates).

    .venv/bin/python bench/sequence.py [--budget 480] [--epochs 8]
    .venv/bin/python bench/sequence.py --smoke   # a generated shop of a few thousand events (CI)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from recsys.batch.backfill import from_pandas
from recsys.config import PROJECT_ROOT, Settings, get_settings
from recsys.contracts.tables import EVENT_PAYLOAD_DDL
from recsys.data.online_retail import load_online_retail
from recsys.data.synthetic import SyntheticShopSpec, generate_shop
from recsys.logging_setup import setup_logging
from recsys.sequence.gru import GruWeights, probabilities
from recsys.sequence.pipeline import MERGED, MODEL, WITH_SIGNAL, SequenceOutcome, train_and_evaluate
from recsys.spark.session import get_spark

RETAIL = PROJECT_ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.parquet"
CANDIDATES = 500
TARGET_GAIN, TARGET_TRAIN_S, TARGET_P99_MS = 1.2, 600.0, 2.0  # the figures, printed beside the results


def events_of(spark, smoke: bool):
    """Bronze-like events; kafka_offset is the file's line order, as one partition of a load would number it."""
    if smoke:
        shop = generate_shop(SyntheticShopSpec(n_users=60, n_items=40, n_events=3000, n_categories=6, days=60.0,
                                               seed=3))
    else:
        shop = load_online_retail(RETAIL)
    frame = shop.events.reset_index(drop=True)
    frame["kafka_offset"] = np.arange(len(frame), dtype=np.int64)
    return from_pandas(spark, frame, EVENT_PAYLOAD_DDL + ", kafka_offset BIGINT"), len(frame)


def inference_ms(weights: GruWeights, max_len: int, requests: int, seed: int, threads: int) -> tuple[float, float]:
    """(p50, p99) wall time of one request: read a session of max_len items and score 500 candidates, with
    serving.blas_threads BLAS threads as an API worker has."""
    rng = np.random.default_rng(seed)
    n = len(weights.item_ids)
    times = []
    with threadpool_limits(threads):
        for _ in range(requests):
            session = rng.integers(1, n + 1, size=max_len)
            candidates = rng.choice(np.arange(1, n + 1), size=min(CANDIDATES, n), replace=False)
            started = time.perf_counter()
            probabilities(weights.logits(session, candidates))
            times.append(time.perf_counter() - started)
    p50, p99 = np.percentile(times, [50, 99]) * 1000
    return float(p50), float(p99)


def table(outcome: SequenceOutcome, settings: Settings, n_events: int, requests: int) -> str:
    k = settings.evaluation.k
    s = outcome.stats
    lines = [f"{n_events} events -> sessions train/validation/test {s['sessions_train']}/{s['sessions_validation']}/"
             f"{s['sessions_test']}, {s['items']} items; next-item on {outcome.test[MODEL]['cases']} test sessions",
             f"{'model':<18}{f'HR@{k}':>9}{f'NDCG@{k}':>9}{f'MRR@{k}':>9}"]
    for name, m in outcome.test.items():
        lines.append(f"{name:<18}{m['hr']:9.4f}{m['ndcg']:9.4f}{m['mrr']:9.4f}")
    best_name = max(("als", "item_knn"), key=lambda name: outcome.test[name]["ndcg"])
    best = outcome.test[best_name]["ndcg"]
    ratio = outcome.test[MODEL]["ndcg"] / max(best, 1e-12)
    p50, p99 = inference_ms(outcome.weights, settings.sequence.max_len, requests, settings.sequence.seed,
                            settings.serving.blas_threads)
    lines += [
        f"sequence / best of ALS and item-kNN ({best_name}) NDCG@{k} = {ratio:.2f}x (target >= {TARGET_GAIN}x)",
        f"merged ranking NDCG@{k}: {outcome.test[MERGED]['ndcg']:.4f} without the signal, "
        f"{outcome.test[WITH_SIGNAL]['ndcg']:.4f} with it at weight {outcome.weight:g} (gate: {outcome.reason})",
        f"training {s['train_s']:.1f}s ({s['epochs']} epochs, {s['steps']} steps; target <= {TARGET_TRAIN_S:.0f}s), "
        f"session prep {s['prepare_s']:.1f}s, whole run {s['total_s']:.1f}s",
        f"inference p50 {p50:.3f} ms, p99 {p99:.3f} ms per request ({settings.sequence.max_len} session items, "
        f"{CANDIDATES} candidates, {requests} requests; target <= {TARGET_P99_MS} ms)"]
    return "\n".join(lines)


def run(spark, settings: Settings, smoke: bool, requests: int) -> str:
    events, n_events = events_of(spark, smoke)
    outcome = train_and_evaluate(events, settings, settings.als, settings.serving.merge)
    return table(outcome, settings, n_events, requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny generated shop, to check the bench runs")
    parser.add_argument("--budget", type=float, default=None, help="training budget (s), default sequence.budget_s")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs, default sequence.epochs")
    parser.add_argument("--requests", type=int, default=2000, help="timed inference requests")
    args = parser.parse_args()
    setup_logging()
    settings = get_settings()
    overrides = {key: value for key, value in (("budget_s", args.budget), ("epochs", args.epochs)) if value}
    settings = settings.model_copy(update={"sequence": settings.sequence.model_copy(update=overrides)})
    spark = get_spark(settings, "bench-sequence")
    spark.sparkContext.setCheckpointDir(settings.checkpoint_path("bench-als"))
    print(table_header(args.smoke), run(spark, settings, args.smoke, args.requests), sep="\n")


def table_header(smoke: bool) -> str:
    return "sequence bench on " + ("a generated shop (smoke)" if smoke else "UCI Online Retail, invoices as sessions")


if __name__ == "__main__":
    main()
