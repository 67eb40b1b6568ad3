import pytest

from recsys.batch.gate import decide
from recsys.config import GateConfig

pytestmark = pytest.mark.unit
CFG = GateConfig(min_ndcg=0.1, max_regression=0.02)


def test_first_model_needs_only_the_floor():
    assert decide(0.2, None, CFG).publish
    refused = decide(0.05, None, CFG)
    assert not refused.publish and "floor" in refused.reason


def test_regression_beyond_margin_is_refused():
    assert decide(0.29, 0.30, CFG).publish
    refused = decide(0.27, 0.30, CFG)
    assert not refused.publish and "worse than current" in refused.reason
