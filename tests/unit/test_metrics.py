"""Ranking metrics at a perfect score, at no hit, and at hand-computed values."""

import math

import pytest

from recsys.batch.reference_metrics import (
    average_precision_at_k,
    coverage,
    mean_metrics,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

pytestmark = pytest.mark.unit


def test_perfect_ranking_scores_one():
    ranked, relevant = ["a", "b", "c"], {"a", "b", "c"}
    assert precision_at_k(ranked, relevant, 3) == 1.0
    assert recall_at_k(ranked, relevant, 3) == 1.0
    assert ndcg_at_k(ranked, relevant, 3) == pytest.approx(1.0)
    assert average_precision_at_k(ranked, relevant, 3) == pytest.approx(1.0)


def test_no_hit_scores_zero():
    ranked, relevant = ["x", "y", "z"], {"a", "b"}
    for fn in (precision_at_k, recall_at_k, ndcg_at_k, average_precision_at_k):
        assert fn(ranked, relevant, 3) == 0.0


def test_hand_computed_values():
    # hits at ranks 1 and 3 of 4; 3 relevant items in all.
    ranked, relevant = ["a", "x", "b", "y"], {"a", "b", "c"}
    assert precision_at_k(ranked, relevant, 4) == 0.5
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(dcg / idcg)  # 0.7039
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(0.7039, abs=1e-4)
    assert average_precision_at_k(ranked, relevant, 4) == pytest.approx((1 + 2 / 3) / 3)


def test_k_cuts_the_list_and_precision_divides_by_k():
    assert precision_at_k(["a"], {"a"}, 10) == 0.1
    assert ndcg_at_k(["x", "a"], {"a"}, 1) == 0.0


def test_coverage_and_means():
    assert coverage([["a", "b"], ["b", "c"]], 10) == 0.3
    means = mean_metrics({"u1": ["a"], "u2": ["x"]}, {"u1": {"a"}, "u2": {"b"}, "u3": set()}, 1)
    assert means["precision"] == 0.5 and means["ndcg"] == 0.5
