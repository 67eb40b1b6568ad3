"""The batch pipeline end to end on real Delta tables: stages, outputs, gate, re-runs and rollback."""

import dataclasses

import pytest
from pyspark.sql import functions as F

from recsys.batch import registry, release, run_data, stages
from recsys.batch.backfill import append_events, upsert_items, upsert_users
from recsys.batch.content import content_candidates, item_profiles
from recsys.batch.data_quality import DataQualityError, check_events, require_quality
from recsys.batch.interactions import build_interactions
from recsys.batch.served_evaluation import (
    FULL_SCORING,
    SERVED,
    NoRealtimeState,
    ServedEvaluator,
    catalogue_of,
    served_model,
    signal_key,
)
from recsys.batch.stage_result import StageResult
from recsys.batch.tuning import best_cap, capped, decayed_with
from recsys.config import MergeWeights
from recsys.contracts import model_version as mv
from recsys.contracts.tables import (
    ITEM_CONTENT,
    ITEMS,
    MODEL_REGISTRY,
    POPULAR_ITEMS,
    SIMILAR_ITEMS,
    USER_FACTORS,
    VERSIONED_TABLES,
)
from recsys.serving.recommender import RecommendationQuery, Recommender
from recsys.spark.delta import read_table
from recsys.stores.model_store import DeltaModelStore
from recsys.stores.registry_store import RejectedVersionError, activate_version
from tests.shop_data import two_taste_catalogue, two_taste_events

pytestmark = pytest.mark.spark
RUN_DATE = "2026-11-02"


@pytest.fixture(scope="module")
def tracked(settings, tmp_path_factory):
    """The shared lake with MLflow tracking on, in a store of its own: what `published` trains with."""
    root = tmp_path_factory.mktemp("mlflow")
    return settings.model_copy(update={"tracking": settings.tracking.model_copy(update={
        "enabled": True, "uri": str(root / "mlflow.db"), "artifact_root": str(root / "artifacts"),
        "experiment": "test-stages"}), "tuning": settings.tuning.model_copy(update={
        "interaction_half_life_days": [365.0]})})  # the decay loop runs once


@pytest.fixture(scope="module")
def published(spark, settings, tracked):
    events = two_taste_events()
    append_events(spark, settings, events)
    append_events(spark, settings, events)  # a repeated load adds nothing
    items, users = two_taste_catalogue()
    upsert_items(spark, settings, items)
    upsert_users(spark, settings, users)
    results = stages.run_all(spark, tracked, RUN_DATE)
    return results, registry.get_version(settings, results[0].model_version)


def versioned(spark, settings, spec, version):
    return read_table(spark, settings, spec).where(F.col("model_version") == version)


def test_stages_take_one_version_from_candidate_to_published(published):
    results, entry = published
    assert [(r.stage, r.status) for r in results] == [
        ("train", mv.CANDIDATE), ("sequence", mv.CANDIDATE), ("evaluate", mv.CANDIDATE), ("gate", mv.APPROVED),
        ("publish", mv.PUBLISHED)]
    assert {r.model_version for r in results} == {mv.version_name(RUN_DATE)}
    assert entry["status"] == mv.PUBLISHED and entry["published_at"] is not None
    assert (entry["n_users"], entry["n_items"], entry["n_interactions"]) == (40, 16, len(two_taste_events()))


def test_the_train_stage_keeps_its_interactions_for_the_evaluate_stage(published, spark, settings):
    _, entry = published
    kept = run_data.kept_interactions(spark, settings, RUN_DATE)
    decay = entry["params"]["events"]["half_life_days"]  # the interaction half-life tuning chose
    assert decay in {settings.events.half_life_days, 365.0}  # the configured one or the one `tracked` tries
    built, _ = run_data.interactions_up_to(spark, decayed_with(settings, decay), RUN_DATE)
    assert kept.count() == entry["n_interactions"]
    assert kept.exceptAll(built.select(kept.columns)).count() == 0  # what train trained on, built once
    kept.unpersist()
    built.unpersist()


def test_models_are_compared_with_every_baseline_on_the_same_split(published, settings):
    _, entry = published
    metrics = entry["metrics"]
    signals = {signal_key(name) for name in settings.evaluation.signals}
    assert set(metrics) == {SERVED, FULL_SCORING, *signals, "als", "popularity", "item_knn", "content"}
    assert set(entry["params"]["validation"]) == {SERVED, FULL_SCORING, *signals}  # what the gate decided on
    assert metrics["als"]["ndcg"] > metrics["popularity"]["ndcg"]
    assert metrics[SERVED]["ndcg"] > metrics["popularity"]["ndcg"]
    assert metrics["content"]["ndcg"] > metrics["popularity"]["ndcg"]  # tastes follow the categories
    assert all(set(m) == {"ndcg", "precision", "recall", "map", "coverage"} for m in metrics.values())


def test_tuning_tries_the_configured_model_first_and_keeps_the_best(published, settings):
    _, entry = published
    trials = entry["tuning"]
    assert 1 <= len(trials) <= settings.tuning.max_trials
    first = trials[0]["params"]
    assert (first["rank"], first["max_iter"]) == (settings.als.rank, settings.als.max_iter)
    assert first["reg_param"] == pytest.approx(settings.als.reg_param)
    best = max(trials, key=lambda t: t["score"])["params"]
    assert {k: entry["params"]["als"][k] for k in best} == pytest.approx(best)


def test_report_is_written_next_to_the_registry_row(published):
    _, entry = published
    with open(entry["report_uri"], encoding="utf-8") as f:
        page = f.read()
    assert entry["model_version"] in page and "item_knn" in page and "validation served" in page
    assert "best single baseline (validation)" in page
    assert page.count("data:image/png;base64,") == 2  # metrics and tuning curve


def test_every_stage_is_tracked_in_mlflow(published, spark, tracked):
    """A run per model version, a nested run per stage and per tuning trial."""
    from mlflow.tracking import MlflowClient

    results, _ = published
    version = results[0].model_version
    assert [r.status for r in results][-1] == mv.PUBLISHED
    client = MlflowClient(f"sqlite:///{tracked.path(tracked.tracking.uri)}")
    experiment = client.get_experiment_by_name("test-stages")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.model_version = '{version}'")
    by_level: dict[str, list] = {}
    for run in runs:
        by_level.setdefault(run.data.tags["recsys.level"], []).append(run)
    (parent,) = by_level["version"]
    assert parent.data.tags["status"] == mv.PUBLISHED
    stage_runs = {r.data.tags["stage"]: r for r in by_level["stage"]}
    assert set(stage_runs) == {"train", "sequence", "evaluate", "gate", "publish"}
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in stage_runs.values())
    assert int(stage_runs["train"].data.params["als.rank"]) > 0
    evaluated = stage_runs["evaluate"].data.metrics
    assert {"als.ndcg", "popularity.ndcg", "item_knn.ndcg"} <= set(evaluated)
    registered = registry.get_version(tracked, version)["metrics"]
    assert evaluated["als.ndcg"] == pytest.approx(registered["als"]["ndcg"])
    assert stage_runs["gate"].data.tags["gate_reason"]
    trials = by_level["trial"]
    assert 1 <= len(trials) <= tracked.tuning.max_trials
    assert all(t.data.tags["mlflow.parentRunId"] == stage_runs["train"].info.run_id for t in trials)
    assert all("score" in t.data.metrics and "rank" in t.data.params for t in trials)
    artifacts = [a.path for a in client.list_artifacts(stage_runs["gate"].info.run_id)]
    assert artifacts == [f"{version}.html"]


def test_outputs_hold_similar_popular_and_content_rows_for_the_version(published, spark, settings):
    version = published[1]["model_version"]
    similar = versioned(spark, settings, SIMILAR_ITEMS, version).where(F.col("item_id") == "a1").collect()
    assert similar and all(r["similar_id"].startswith("a") for r in similar)
    assert sorted(r["rank"] for r in similar) == list(range(1, len(similar) + 1))
    popular = versioned(spark, settings, POPULAR_ITEMS, version)
    young = popular.where(F.col("segment") == "age_band=18-24,gender=f,location=uk").orderBy("rank").collect()
    assert young and all(r["item_id"].startswith("a") for r in young)
    assert popular.where(F.col("segment") == "*").count() == 16
    assert versioned(spark, settings, ITEM_CONTENT, version).count() == 16


def test_content_model_ranks_by_catalogue_attributes(spark, settings, published):
    items, _ = two_taste_catalogue()
    profiles = item_profiles(spark.createDataFrame(items), settings.content)
    interactions = build_interactions(spark.createDataFrame(two_taste_events().iloc[:3]), settings.events,
                                      F.current_timestamp())
    recs = {r["user_id"]: r["items"] for r in content_candidates(interactions, profiles, 5, 256).collect()}
    assert list(recs) == ["u0"] and all(i.startswith("a") for i in recs["u0"])


def test_serving_loads_current_version_and_ranks_by_taste(published, settings):
    store = DeltaModelStore(settings)
    version = published[1]["model_version"]
    assert store.current_version() == version
    model = dataclasses.replace(store.load(version), max_per_category=None)  # the configured cap, set below
    rank = published[1]["params"]["als"]["rank"]
    assert model.user_factors.shape == (40, rank) and model.item_factors.shape == (16, rank)

    no_cap = settings.serving.model_copy(update={"max_per_category": 0})  # the catalogue has two categories
    for user, taste in (("u0", "a"), ("u25", "b")):
        recs = Recommender(lambda: model, NoRealtimeState(), no_cap).recommend(user, RecommendationQuery(4))
        assert [i.item_id[0] for i in recs.items] == [taste] * 4


def test_evaluation_and_serving_rank_identically_for_the_same_outputs(published, spark, settings):
    """The evaluation's model (Spark outputs collected in memory) ranks exactly as serving's (Delta, delta-rs)."""
    entry = published[1]
    version = entry["model_version"]
    store = DeltaModelStore(settings)
    served = store.load(version)
    assert served.merge == MergeWeights(**entry["params"]["merge"])  # serving uses the version's tuned weights
    assert served.max_per_category == entry["params"]["max_per_category"]  # and its tuned category cap
    assert served.max_per_category in {settings.serving.max_per_category, *settings.tuning.max_per_category}
    outputs = {spec: versioned(spark, settings, spec, version).drop("model_version")
               for spec in VERSIONED_TABLES}
    evaluated = served_model(outputs, settings, catalogue_of(read_table(spark, settings, ITEMS)), version)
    # The sequence model is an output too (files beside the tables, not a table): the version's weight for it
    # is the sequence stage's choice, so both sides rank with it.
    evaluated = dataclasses.replace(evaluated, sequence=served.sequence)
    now = run_data.end_of(RUN_DATE)
    users = [f"u{u}" for u in range(40)] + ["a-stranger"]
    query = RecommendationQuery(settings.evaluation.k)
    recommender = Recommender(lambda: served, NoRealtimeState(), settings.serving,
                              settings.outputs.segment_attributes, clock=lambda: now)
    serving_lists = {u: [i.item_id for i in recommender.recommend(u, query).items] for u in users}
    as_tuned = stages.with_tuned(settings, served.merge, entry["params"]["popularity_half_life_days"],
                                 max_per_category=served.max_per_category)
    evaluation_lists = ServedEvaluator(evaluated, {u: {"a0"} for u in users}, as_tuned, now).rankings(served.merge)
    assert evaluation_lists == serving_lists
    bought = set(two_taste_events().query("event_type == 'purchase' and user_id == 'u0'")["item_id"])
    assert bought and not bought & set(serving_lists["u0"])  # the repurchase policy holds in both


def test_tuning_lifts_a_category_cap_that_hides_what_shoppers_want(published, spark, settings):
    """Each shopper of the two-taste shop wants the items of one category they have not bought: a cap of one
    item per category leaves one of them on the list, so validation picks no cap; a tie keeps the configured."""
    version = published[1]["model_version"]
    outputs = {spec: versioned(spark, settings, spec, version).drop("model_version") for spec in VERSIONED_TABLES}
    model = served_model(outputs, settings, catalogue_of(read_table(spark, settings, ITEMS)), version)
    truth = {f"u{u}": {f"{'a' if u < 20 else 'b'}{i}" for i in (0, 4)} for u in range(40)}  # the gaps
    one = capped(settings, 1).model_copy(update={"tuning": settings.tuning.model_copy(
        update={"max_per_category": [0, 1]})})
    now, weights = run_data.end_of(RUN_DATE), settings.serving.merge
    at_one = ServedEvaluator(model, truth, one, now).score(weights)["ndcg"]
    cap, score = best_cap(model, truth, one, now, weights, at_one)
    assert cap == 0 and score > at_one
    assert score == pytest.approx(ServedEvaluator(model, truth, capped(one, 0), now).score(weights)["ndcg"])
    assert best_cap(model, truth, capped(one, 0), now, weights, score) == (0, score)  # 1 is worse: 0 stays
    assert best_cap(model, {}, one, now, weights, 0.0)[0] == 1  # nothing to gain: the configured cap stays


def test_rerunning_a_decided_run_date_changes_nothing(published, spark, settings):
    version = published[1]["model_version"]
    rows_before = read_table(spark, settings, MODEL_REGISTRY).count()
    factors_before = versioned(spark, settings, USER_FACTORS, version).count()
    again = stages.run_all(spark, settings, RUN_DATE)
    assert {r.model_version for r in again} == {version}
    assert again[0].detail.startswith("run date already decided")
    assert read_table(spark, settings, MODEL_REGISTRY).count() == rows_before
    assert versioned(spark, settings, USER_FACTORS, version).count() == factors_before


def _stage(results: list[StageResult], name: str) -> StageResult:
    return next(r for r in results if r.stage == name)


def test_gate_refuses_a_model_below_its_best_baseline(published, spark, settings):
    popularity_only = settings.serving.merge.model_copy(update={
        name: 1.0 if name == "popularity" else 0.0 for name in MergeWeights.model_fields})
    weak = settings.model_copy(update={
        "serving": settings.serving.model_copy(update={"merge": popularity_only}),
        "tuning": settings.tuning.model_copy(update={"enabled": False}),
        "sequence": settings.sequence.model_copy(update={"enabled": False})})  # the gate is under test
    refused = stages.run_all(spark, weak, RUN_DATE, force=True)
    gate = _stage(refused, "gate")
    assert gate.status == mv.REJECTED and "best single baseline" in gate.detail
    entry = registry.get_version(settings, refused[0].model_version)
    best = max(m["ndcg"] for name, m in entry["params"]["validation"].items() if name != SERVED)
    assert entry["params"]["validation"][SERVED]["ndcg"] < best
    assert DeltaModelStore(settings).current_version() == published[1]["model_version"]


def test_gate_refuses_a_bad_model_and_rollback_restores_an_older_one(published, spark, settings):
    good = published[1]["model_version"]
    strict = settings.model_copy(update={"gate": settings.gate.model_copy(update={"min_ndcg": 1.0}),
                                         "tuning": settings.tuning.model_copy(update={"enabled": False}),
                                         "sequence": settings.sequence.model_copy(update={"enabled": False})})
    refused = stages.run_all(spark, strict, RUN_DATE, force=True)
    bad = refused[0].model_version
    assert bad == mv.version_name(RUN_DATE, 3)  # .2 was refused below its best baseline
    assert _stage(refused, "gate").status == mv.REJECTED and "floor" in _stage(refused, "gate").detail
    assert _stage(refused, "publish").status == mv.REJECTED  # publish leaves it alone
    store = DeltaModelStore(settings)
    assert store.current_version() == good  # serving keeps the old model
    assert registry.get_version(settings, bad)["tuning"] == []

    with pytest.raises(RejectedVersionError, match="rejected by the gate"):
        activate_version(settings, bad)  # a version that failed the gate is never made current
    assert store.current_version() == good
    activate_version(settings, good)  # a rollback to a published version is one commit
    assert store.current_version() == good


def test_data_quality_fails_before_the_first_event(published, spark, settings):
    report = check_events(spark, settings, "2026-10-01")
    assert not report.passed and report.events == 0
    assert any("fewer than" in p for p in report.problems)
    with pytest.raises(DataQualityError, match="events up to 2026-10-01"):
        require_quality(spark, settings, "2026-10-01")
    assert check_events(spark, settings, RUN_DATE).passed


def test_a_stage_out_of_order_says_what_to_run_first(published, spark, settings):
    with pytest.raises(LookupError, match="run the train stage first"):
        release.publish_stage(settings, "2026-12-31")
