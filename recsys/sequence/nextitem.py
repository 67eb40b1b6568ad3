"""Next-item evaluation: leave each held-out session's last item out and rank it from the rest.

Every model scores the same vocabulary (the items of the training sessions) for the same cases; the items of
the session's own input are never candidates (the target, being the session's last distinct item, is never
among them). Ties count half (the expected rank under a random order), so a baseline that scores most items 0
gets no hits for free. Baselines are the merge's own signals computed as serving computes them: the shopper's
ALS taste ("als"), the batch item-kNN of the session's items ("item_knn") and the ALS cosine to the session's
items ("recent", recent items' neighbours); "merged" is their weighted sum with the version's merge weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recsys.config import MergeWeights
from recsys.sequence.gru import GruWeights, probabilities
from recsys.sequence.sessions import Session

NORM_FLOOR = 1e-9
METRICS = ("hr", "ndcg", "mrr")


@dataclass(frozen=True)
class Cases:
    """Held-out sessions as (user, input rows, target row) in the model's vocabulary (rows from 1)."""

    users: list[str]
    inputs: list[np.ndarray]
    targets: np.ndarray


def cases(sessions: list[Session], weights: GruWeights, max_len: int, limit: int = 0) -> Cases:
    """One case per session whose last item the vocabulary knows and whose input keeps a known item; the
    newest `limit` sessions when limit > 0."""
    chosen = sessions[-limit:] if limit > 0 else sessions
    users, inputs, targets = [], [], []
    for session in chosen:
        target = weights.row.get(session.items[-1])
        rows = weights.rows_of(session.items[:-1])[-max_len:]
        if target is not None and rows.size:
            users.append(session.user_id)
            inputs.append(rows)
            targets.append(target)
    return Cases(users, inputs, np.asarray(targets, dtype=np.int64))


def ranking_metrics(scores: np.ndarray, held_out: Cases, k: int) -> dict[str, float]:
    """HR@k, NDCG@k and MRR@k of `scores` (cases x vocabulary, column j = row j + 1), input items excluded."""
    if len(held_out.targets) == 0:
        return {"hr": 0.0, "ndcg": 0.0, "mrr": 0.0, "cases": 0}
    ranks = np.empty(len(held_out.targets))
    for i, (rows, target) in enumerate(zip(held_out.inputs, held_out.targets, strict=True)):
        row = scores[i].astype(np.float64)
        row[rows - 1] = -np.inf
        value = row[target - 1]
        ranks[i] = np.count_nonzero(row > value) + (np.count_nonzero(row == value) - 1) / 2
    hit = ranks < k
    return {"hr": float(hit.mean()), "ndcg": float(np.where(hit, 1.0 / np.log2(ranks + 2), 0.0).mean()),
            "mrr": float(np.where(hit, 1.0 / (ranks + 1), 0.0).mean()), "cases": len(ranks)}


def sequence_scores(weights: GruWeights, held_out: Cases) -> np.ndarray:
    """The model's signal as serving computes it: softmax scaled so the likeliest item scores 1."""
    if not held_out.inputs:
        return np.zeros((0, len(weights.item_ids)), dtype=np.float32)
    return np.stack([probabilities(weights.logits(rows)) for rows in held_out.inputs])


@dataclass(frozen=True)
class Baselines:
    """What the merge's other signals know, aligned to the sequence model's vocabulary."""

    similar: sparse.csr_matrix  # (V, V) item-kNN cosine, each row cut to its strongest neighbours
    item_factors: np.ndarray  # (V, rank) ALS item factors (0 for items ALS did not see)
    user_factors: dict[str, np.ndarray]
    popularity: np.ndarray  # (V,) log popularity scaled to [0, 1]

    @classmethod
    def build(cls, weights: GruWeights, pairs: list[tuple[str, str]], neighbours: int,
              user_factors: dict[str, np.ndarray], item_factors: dict[str, np.ndarray]) -> Baselines:
        """From the (user, item) pairs and ALS factors of the training period."""
        n = len(weights.item_ids)
        users: dict[str, int] = {}
        rows, cols = [], []
        for user, item in set(pairs):
            column = weights.row.get(item)
            if column is not None:
                rows.append(users.setdefault(user, len(users)))
                cols.append(column - 1)
        incidence = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(max(len(users), 1), n))
        counts = np.asarray(incidence.sum(axis=0)).ravel()
        inverse = 1.0 / np.sqrt(np.maximum(counts, 1.0))
        cosine = (incidence.T @ incidence).tocsr().multiply(inverse[:, None]).multiply(inverse[None, :]).tocsr()
        cosine.setdiag(0.0)
        cosine.eliminate_zeros()
        rank = len(next(iter(item_factors.values()))) if item_factors else 1
        factors = np.zeros((n, rank), dtype=np.float32)
        for item, vector in item_factors.items():
            column = weights.row.get(item)
            if column is not None:
                factors[column - 1] = vector
        log_pop = np.log1p(counts)
        return cls(_top_per_row(cosine, neighbours), factors, user_factors,
                   (log_pop / log_pop.max() if log_pop.max() > 0 else log_pop).astype(np.float32))

    def item_knn(self, held_out: Cases) -> np.ndarray:
        out = np.zeros((len(held_out.inputs), self.similar.shape[0]), dtype=np.float32)
        for i, rows in enumerate(held_out.inputs):
            total = np.asarray(self.similar[rows - 1].sum(axis=0)).ravel()
            out[i] = total / total.max() if total.max() > 0 else total
        return out

    def als(self, held_out: Cases) -> np.ndarray:
        """The shopper's taste (their ALS row; the mean of the session's items for a shopper ALS lacks)."""
        out = np.zeros((len(held_out.inputs), len(self.item_factors)), dtype=np.float32)
        for i, (user, rows) in enumerate(zip(held_out.users, held_out.inputs, strict=True)):
            taste = self.user_factors.get(user)
            taste = self.item_factors[rows - 1].mean(axis=0) if taste is None else taste
            product = self.item_factors @ taste
            top = float(np.abs(product).max()) if product.size else 0.0
            out[i] = product / top if top > 0 else product
        return out

    def recent(self, held_out: Cases) -> np.ndarray:
        """Cosine to the mean of the session's unit item vectors (serving's "recent" signal)."""
        norms = np.maximum(np.linalg.norm(self.item_factors, axis=1), NORM_FLOOR)
        unit = self.item_factors / norms[:, None]
        if not held_out.inputs:
            return np.zeros((0, len(norms)), dtype=np.float32)
        means = np.stack([unit[rows - 1].mean(axis=0) for rows in held_out.inputs])
        return ((means @ self.item_factors.T) / norms[None, :]).astype(np.float32)

    def merged(self, held_out: Cases, merge: MergeWeights) -> np.ndarray:
        """The merge of the signals an offline session has (live signals are not in the lake)."""
        return (merge.factors * self.als(held_out) + merge.recent * self.recent(held_out)
                + merge.item_knn * self.item_knn(held_out) + merge.popularity * self.popularity[None, :])


def _top_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    """Each row's `keep` largest entries (the batch similar-items lists are cut the same way)."""
    matrix = matrix.tocsr()
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        if end == start:
            continue
        data, index = matrix.data[start:end], matrix.indices[start:end]
        best = np.argsort(-data, kind="stable")[:keep]
        rows.extend([r] * len(best))
        cols.extend(index[best].tolist())
        vals.extend(data[best].tolist())
    return sparse.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=matrix.shape)


def tune_weight(base: np.ndarray, signal: np.ndarray, held_out: Cases, steps: list[float],
                k: int) -> tuple[float, dict[float, float]]:
    """The step whose base + step x signal has the best NDCG@k (the smallest on ties: 0 unless it helps)."""
    ndcg = {step: ranking_metrics(base + step * signal, held_out, k)["ndcg"] for step in sorted(steps)}
    best = max(ndcg, key=lambda step: (round(ndcg[step], 12), -step))
    return best, ndcg
