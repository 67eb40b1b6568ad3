"""Ranking metrics in plain Python, with the definitions of Spark's RankingMetrics.

The batch layer scores models with Spark's RankingEvaluator; this module is the reference the tests
hold it to, and serves small in-memory evaluations. Relevance is binary; k cuts the ranked list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def precision_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Hits in the top k divided by k (Spark divides by k even when fewer items are ranked)."""
    return sum(1 for item in ranked[:k] if item in relevant) / k


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return sum(1 for item in ranked[:k] if item in relevant) / len(relevant) if relevant else 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def average_precision_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Mean of precision at each hit in the top k, over min(|relevant|, k)."""
    hits, total = 0, 0.0
    for i, item in enumerate(ranked[:k]):
        if item in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(relevant), k) if relevant else 0.0


def coverage(recommended: Iterable[Sequence[str]], catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    distinct = {item for ranked in recommended for item in ranked}
    return len(distinct) / catalogue_size if catalogue_size else 0.0


METRICS = {"precision": precision_at_k, "recall": recall_at_k, "ndcg": ndcg_at_k, "map": average_precision_at_k}


def mean_metrics(rankings: dict[str, Sequence[str]], truth: dict[str, set[str]], k: int) -> dict[str, float]:
    """Average each metric over the users that have held-out items."""
    users = [u for u, items in truth.items() if items]
    return {name: (sum(fn(rankings.get(u, []), truth[u], k) for u in users) / len(users) if users else 0.0)
            for name, fn in METRICS.items()}
