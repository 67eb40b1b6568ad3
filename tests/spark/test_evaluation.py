"""Evaluation pieces on Spark: the evaluator agrees with the plain-Python metrics; splits; interactions."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pyspark.sql import functions as F

from recsys.batch.als import factor_frames, fit_als, recommend_all
from recsys.batch.evaluation import als_candidates
from recsys.batch.interactions import build_interactions
from recsys.batch.item_knn import item_knn_candidates, item_similarities
from recsys.batch.ranking_metrics import (
    HeldOut,
    collected_metrics,
    ranking_metrics,
    score_candidates,
    unseen_top_k,
)
from recsys.batch.reference_metrics import mean_metrics
from recsys.batch.splits import cut_split, split_per_user, validation_cut
from recsys.batch.tuning import validation_setup
from recsys.config import ValidationConfig
from recsys.contracts.tables import ITEMS

pytestmark = pytest.mark.spark


def test_spark_ranking_evaluator_agrees_with_reference(spark):
    recs = {"u1": ["a", "x", "b", "y"], "u2": ["c", "d"], "u3": ["z"]}
    truth = {"u1": {"a", "b", "c"}, "u2": {"d"}, "u3": {"q"}}
    recs_df = spark.createDataFrame(list(recs.items()), "user_id STRING, items ARRAY<STRING>")
    truth_df = spark.createDataFrame([(u, sorted(t)) for u, t in truth.items()], "user_id STRING, label ARRAY<STRING>")
    got = ranking_metrics(recs_df, truth_df, k=3, catalogue_size=10)
    expected = mean_metrics(recs, truth, k=3)
    for name in ("precision", "recall", "ndcg", "map"):
        assert got[name] == pytest.approx(expected[name]), name
    assert got["coverage"] == pytest.approx(0.7)
    assert collected_metrics(recs_df, truth_df, k=3, catalogue_size=10) == pytest.approx(got)


def test_unseen_top_k_drops_training_items(spark):
    cands = spark.createDataFrame([("u1", ["a", "b", "c", "d"])], "user_id STRING, items ARRAY<STRING>")
    seen = spark.createDataFrame([("u1", ["b"])], "user_id STRING, seen ARRAY<STRING>")
    assert unseen_top_k(cands, seen, 2).first()["items"] == ["a", "c"]


def test_splits_hold_out_a_quarter_per_user(spark):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(f"u{u}", f"i{i}", 1.0, start + timedelta(days=i)) for u in range(3) for i in range(8)]
    df = spark.createDataFrame(rows, "user_id STRING, item_id STRING, strength DOUBLE, last_ts TIMESTAMP")
    for how in ("random", "time"):
        train, test = split_per_user(df, 0.25, how, seed=1)
        per_user = {r["user_id"]: r["n"] for r in test.groupBy("user_id").agg(F.count("*").alias("n")).collect()}
        assert per_user == {"u0": 2, "u1": 2, "u2": 2}
        assert train.count() + test.count() == 24
        assert train.join(test, ["user_id", "item_id"]).count() == 0
    _, latest = split_per_user(df, 0.25, "time", seed=1)
    assert {r["item_id"] for r in latest.collect()} == {"i6", "i7"}


def test_validation_cuts_every_shopper_at_one_date_before_the_last_event(spark):
    """One calendar cut 28 days before the last event (day 60) for everyone; a short history (all events within
    the window) moves the cut later so that at most max_fraction of the events are held out."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    day = lambda n: start + timedelta(days=n)  # noqa: E731
    rows = [("u0", "i1", day(0)), ("u0", "i2", day(20)), ("u0", "i3", day(40)), ("u1", "i1", day(10)),
            ("u1", "i4", day(45)), ("u1", "i5", day(60))]
    events = spark.createDataFrame(rows, "user_id STRING, item_id STRING, ts TIMESTAMP")
    cfg = ValidationConfig(split="cut", last_days=28, max_fraction=0.5, max_users=0)
    before, after, cut = validation_cut(events, cfg)
    assert cut == pytest.approx(day(32).timestamp())
    assert sorted(r["item_id"] for r in after.collect()) == ["i3", "i4", "i5"]
    assert before.count() == 3
    _, late, cut = validation_cut(events, ValidationConfig(split="cut", last_days=58, max_fraction=0.2, max_users=0))
    assert late.count() <= 2 and cut >= day(40).timestamp()


def test_a_time_cut_holds_out_only_new_items_of_known_shoppers(spark):
    before = spark.createDataFrame([("u0", "i1"), ("u1", "i1")], "user_id STRING, item_id STRING")
    after = spark.createDataFrame([("u0", "i1"), ("u0", "i2"), ("u2", "i3")], "user_id STRING, item_id STRING")
    assert [tuple(r) for r in cut_split(before, after).collect()] == [("u0", "i2")]


def test_interactions_weigh_decay_and_negative_signals(spark, settings):
    now = datetime(2026, 3, 1, tzinfo=UTC)
    half_life = timedelta(days=settings.events.half_life_days)
    rows = [("e1", "u", "old", "purchase", now - half_life, 1), ("e2", "u", "new", "purchase", now, 1),
            ("e2", "u", "new", "purchase", now, 1),  # duplicate event id: counted once
            ("e3", "u", "gone", "add_to_cart", now, 1), ("e4", "u", "gone", "remove_from_cart", now, 2)]
    events = spark.createDataFrame(rows, "event_id STRING, user_id STRING, item_id STRING, event_type STRING, "
                                         "ts TIMESTAMP, quantity INT")
    linear = settings.events.model_copy(update={"quantity": "linear"})  # the removal of 2 cancels the add
    got = {r["item_id"]: r["strength"] for r in
           build_interactions(events, linear, F.lit(now).cast("timestamp")).collect()}
    purchase = settings.events.weights["purchase"]
    assert got["new"] == pytest.approx(purchase)
    assert got["old"] == pytest.approx(purchase / 2)
    assert "gone" not in got  # 4 - 2 * 2 = 0: no preference left


@pytest.mark.parametrize("split", ["cut", "random"])
def test_validation_rebuilds_its_fitted_part_with_another_interaction_half_life(spark, settings, split):
    """Tuning tries other events.half_life_days on the same validation pairs: an item had 60 days before the
    fitted part's end counts 0.5^2 with a 30-day half-life and 0.5^(1/6) with a 360-day one."""
    end = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [(f"e{u}{n}", f"u{u}", f"i{n}", "view", end - timedelta(days=60 - 10 * n), 1)
            for u in range(6) for n in range(7)]
    events = spark.createDataFrame(rows, "event_id STRING, user_id STRING, item_id STRING, event_type STRING, "
                                         "ts TIMESTAMP, quantity INT")
    own = settings.model_copy(update={
        "validation": settings.validation.model_copy(update={"split": split, "last_days": 15, "max_users": 0}),
        "events": settings.events.model_copy(update={"half_life_days": 30.0})})
    train = build_interactions(events, own.events, F.lit(end).cast("timestamp"))
    validation = validation_setup(train, events, own, spark.createDataFrame([], ITEMS.ddl))
    as_of = validation.now_s
    pairs = {(r["user_id"], r["item_id"]) for r in validation.fit_part.collect()}
    for days in (30.0, 360.0):
        rebuilt = {(r["user_id"], r["item_id"]): r["strength"] for r in validation.rebuild(days).collect()}
        assert set(rebuilt) == pairs  # the same pairs, only their strengths change
        for (user, item), strength in rebuilt.items():
            age_days = (as_of - (end - timedelta(days=60 - 10 * int(item[1:]))).timestamp()) / 86_400
            assert strength == pytest.approx(0.5 ** (age_days / days), rel=1e-4), (user, item, days)


def test_item_knn_recommends_items_bought_together(spark):
    rows = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "a"), ("u3", "c"), ("u4", "c"), ("u4", "d")]
    train = spark.createDataFrame([(u, i, 1.0) for u, i in rows], "user_id STRING, item_id STRING, strength DOUBLE")
    sims = {(r["item_id"], r["other_id"]): r["sim"] for r in item_similarities(train, 10).collect()}
    assert sims[("a", "b")] == pytest.approx(2 / (3 ** 0.5 * 2 ** 0.5))  # co-bought by 2 of a's 3 users
    assert ("a", "d") not in sims
    recs = {r["user_id"]: r["items"] for r in item_knn_candidates(train, 3, 10).collect()}
    assert [i for i in recs["u4"] if i not in {"c", "d"}] == ["a"]  # a is c's only neighbour beyond u4's own


def test_blocked_top_k_scores_als_as_recommend_for_all_users_did(spark, settings):
    """The evaluation's blocked top-k on a user sample gives the metrics that scoring every user with
    recommendForAllUsers gave, on every user and on a seeded sample of them."""
    rng = np.random.default_rng(5)
    rows = [(f"u{u:02d}", f"i{i:02d}", float(rng.integers(1, 5)), datetime(2026, 1, 1, tzinfo=UTC))
            for u in range(40) for i in rng.choice(30, size=8, replace=False)]
    df = spark.createDataFrame(rows, "user_id STRING, item_id STRING, strength DOUBLE, last_ts TIMESTAMP")
    train, test = split_per_user(df, 0.25, "random", seed=7)  # every user holds out 2 of 8
    train, test = train.persist(), test.persist()
    fitted = fit_als(train, settings.als.model_copy(update={"rank": 4, "max_iter": 3}))
    held = HeldOut.build(train, test, 5)
    today = ranking_metrics(unseen_top_k(recommend_all(fitted, held.fetch), held.seen, 5), held.truth, 5,
                            held.catalogue)  # recommendForAllUsers scored by Spark's RankingEvaluator
    blocked = score_candidates(als_candidates(*factor_frames(fitted), held), held)
    assert blocked == pytest.approx(today)
    assert today["ndcg"] > 0

    sample = HeldOut.build(train, test, 5, max_users=10, seed=7)
    users = sorted(r["user_id"] for r in sample.users.collect())
    assert len(users) == 10 and users == sorted(r["user_id"] for r in
                                                HeldOut.build(train, test, 5, 10, 7).users.collect())
    assert sample.truth.count() == 10 and sample.seen.count() == 10
    on_sample = {r["user_id"]: r["items"] for r in als_candidates(*factor_frames(fitted), sample).collect()}
    on_all = {r["user_id"]: r["items"] for r in unseen_top_k(recommend_all(fitted, held.fetch), held.seen, 5)
              .collect()}
    assert on_sample == {u: on_all[u] for u in users}
    for budget, in_executors in ((10 * 30, False), (5 * 30, True)):  # room for the 10 sampled users, for 5
        candidates = als_candidates(*factor_frames(fitted), sample, budget)
        assert ("MapInArrow" in candidates._jdf.queryExecution().logical().toString()) is in_executors
        assert {r["user_id"]: r["items"] for r in candidates.collect()} == on_sample
    train.unpersist()
    test.unpersist()
