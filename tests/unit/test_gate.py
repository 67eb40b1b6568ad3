import pytest

from recsys.batch.gate import decide
from recsys.config import GateConfig

pytestmark = pytest.mark.unit
CFG = GateConfig(min_ndcg=0.1, max_regression=0.02, baseline_margin=0.05)


def test_first_model_needs_only_the_floor():
    assert decide(0.2, None, CFG).publish
    refused = decide(0.05, None, CFG)
    assert not refused.publish and "floor" in refused.reason


def test_regression_beyond_margin_is_refused():
    assert decide(0.29, 0.30, CFG).publish
    refused = decide(0.27, 0.30, CFG)
    assert not refused.publish and "worse than current" in refused.reason


def test_a_model_below_its_best_baseline_is_refused():
    refused = decide(0.30, None, CFG, ("item_knn", 0.31))
    assert not refused.publish
    assert "item_knn" in refused.reason and "0.3100" in refused.reason


def test_beating_the_best_baseline_needs_the_margin():
    assert not decide(0.32, None, CFG, ("item_knn", 0.31)).publish  # better, but by less than 5 %
    passed = decide(0.33, None, CFG, ("item_knn", 0.31))
    assert passed.publish and "item_knn" in passed.reason
