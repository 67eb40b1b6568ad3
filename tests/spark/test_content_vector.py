"""A new item's content profile made in the serving process hashes its tokens as Spark's HashingTF does,
so it lives in the batch profiles' space."""

import pytest

from recsys.batch.content import item_profiles
from recsys.serving.content_vector import content_rows, item_tokens

pytestmark = pytest.mark.spark


def test_serving_hashes_the_tokens_into_the_batch_layers_columns(spark, settings):
    cfg = settings.content
    rows = [("i1", "Trail Runner shoe", "Shoes", "Acme", None), ("i2", "Wool hat", "Hats", None, None)]
    items = spark.createDataFrame(rows, "item_id string, title string, category string, brand string, price double")
    batch = {r.item_id: set(r.indices) for r in item_profiles(items, cfg).collect()}
    live = content_rows([item_tokens(t, c, b, None, cfg.min_token_length) for _, t, c, b, _ in rows],
                        cfg.num_features)
    assert batch == {item: set(live[n].indices.tolist()) for n, (item, *_) in enumerate(rows)}
