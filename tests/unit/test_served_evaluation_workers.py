"""Forked workers rank held-out shoppers exactly as one process does (recsys.batch.served_evaluation)."""

import numpy as np
import pytest

from recsys.batch.served_evaluation import ServedEvaluator
from recsys.config import load_settings
from recsys.demo.synthetic_model import make_model
from recsys.stores.attribute_arrays import AttributeArrays, ItemCatalogue
from recsys.stores.model_store import FactorModel

pytestmark = pytest.mark.unit


def _evaluator(workers: int) -> ServedEvaluator:
    settings = load_settings("test", environ={"RECSYS__EVALUATION__WORKERS": str(workers),
                                              "RECSYS__EVALUATION__MIN_USERS_PER_WORKER": "10"})
    shop = make_model("eval.workers", 60, 300, 8, 6)
    catalogue = ItemCatalogue(shop.item_ids, AttributeArrays.from_values(
        shop.categories, ["brand"] * len(shop.item_ids), [1.0] * len(shop.item_ids)))
    model = FactorModel(version="eval.workers", user_ids={u: i for i, u in enumerate(shop.user_ids)},
                        user_factors=shop.user_factors, item_ids=shop.item_ids, item_factors=shop.item_factors,
                        popularity=np.linspace(1, 2, len(shop.item_ids), dtype=np.float32), catalogue=catalogue)
    truth = {user: {model.item_ids[n % model.n_items]} for n, user in enumerate(model.user_ids)}
    return ServedEvaluator(model, truth, settings, now_s=1.8e9)


def test_forked_workers_rank_every_shopper_as_one_process_does():
    serial, forked = _evaluator(1), _evaluator(3)
    weights = serial.settings.serving.merge
    one = serial.rankings(weights)
    three = forked.rankings(weights)
    assert list(three) == list(one) == list(serial.truth)  # every shopper, in the truth's order
    assert three == one and all(len(items) == serial.settings.evaluation.k for items in one.values())
    assert forked.score(weights) == serial.score(weights)
