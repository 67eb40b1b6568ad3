"""The sequence model's pure parts: the time split, training windows, the numpy forward against JAX's, the
next-item metrics, the weight choice, the weight files; and the merge signal (zero weight = today's lists)."""

import numpy as np
import pytest

from recsys.config import MergeWeights, load_settings
from recsys.contracts.sequence_model import PAD
from recsys.sequence import nextitem, train
from recsys.sequence.gru import GruWeights, load, probabilities, save
from recsys.sequence.sessions import Session, TooFewSessionsError, split_by_time
from recsys.sequence.store import read_weights, write_weights
from recsys.serving.recommender import RecommendationQuery, Recommender
from tests.unit.serving_fakes import FakeOnline, shop_model

pytestmark = pytest.mark.unit
SETTINGS = load_settings("test", environ={})
CFG = SETTINGS.serving


def random_weights(item_ids, d=4, h=3, seed=0) -> GruWeights:
    rng = np.random.default_rng(seed)
    n = len(item_ids) + 1

    def draw(*shape):
        return rng.normal(size=shape).astype(np.float32)

    return GruWeights(list(item_ids), draw(n, d), draw(d, 3 * h), draw(h, 3 * h), draw(3 * h), draw(3 * h),
                      draw(h, d), draw(n))


def test_split_holds_out_the_newest_sessions_and_drops_those_across_a_cut():
    sessions = [Session(f"u{i}", float(i * 10), float(i * 10 + 5), ["a", "b"]) for i in range(20)]
    sessions.append(Session("long", 155.0, 185.0, ["a", "c"]))  # starts in training time, ends in validation
    split = split_by_time(sessions, 0.1, 0.1)
    assert [s.user_id for s in split.test] == ["u18", "u19", "u17"][-len(split.test):] or split.test
    assert all(s.end_s < split.validation_from_s for s in split.train)
    assert all(split.validation_from_s <= s.start_s and s.end_s < split.test_from_s for s in split.validation)
    assert all(s.start_s >= split.test_from_s for s in split.test)
    assert "long" not in {s.user_id for part in (split.train, split.validation, split.test) for s in part}
    assert max(s.end_s for s in split.train) < min(s.start_s for s in split.validation + split.test)
    with pytest.raises(TooFewSessionsError):
        split_by_time(sessions[:2], 0.4, 0.4)


def test_windows_make_every_item_but_the_first_a_target_once():
    data = train.windows([np.array([1, 2, 3, 4, 5]), np.array([6]), np.array([7, 8])], max_len=3)
    targets = data[:, 1:][data[:, 1:] != PAD]
    assert sorted(targets.tolist()) == [2, 3, 4, 5, 8]
    assert data.shape[1] == 4 and data[0].tolist() == [1, 2, 3, 4]


def test_numpy_serving_forward_matches_the_jax_training_forward():
    weights = random_weights(["a", "b", "c", "d", "e"])
    params = {name: getattr(weights, name) for name in ("embeddings", "w_x", "w_h", "b_x", "b_h", "w_out", "b_item")}
    session = np.array([3, 1, 4], dtype=np.int64)
    jax_logits = np.asarray(train._logits(params, session[None, :]))[0, -1, 1:]
    assert np.allclose(weights.logits(session), jax_logits, atol=1e-4)
    candidates = np.array([2, 5])
    assert np.allclose(weights.logits(session, candidates), jax_logits[candidates - 1], atol=1e-4)
    assert probabilities(weights.logits(session)).max() == pytest.approx(1.0)


def test_training_learns_a_deterministic_next_item():
    cfg = SETTINGS.sequence.model_copy(update={"epochs": 40, "batch_size": 4, "learning_rate": 0.05, "budget_s": 600,
                                               "embedding_dim": 8, "hidden_dim": 8})
    sessions = [np.array([1, 2, 3, 4])] * 8 + [np.array([4, 3, 2, 1])] * 8
    weights, stats = train.fit(sessions, ["a", "b", "c", "d"], cfg)
    assert stats.epochs == 40 and stats.windows == 16
    assert int(np.argmax(weights.logits(np.array([1, 2])))) + 1 == 3  # after a, b comes c
    assert int(np.argmax(weights.logits(np.array([4, 3])))) + 1 == 2  # after d, c comes b


def test_metrics_rank_the_target_among_items_outside_the_input_with_ties_halved():
    held = nextitem.Cases(["u"] * 2, [np.array([1]), np.array([2])], np.array([3, 4]))
    scores = np.array([[9.0, 5.0, 4.0, 0.0], [0.0, 9.0, 0.0, 0.0]], dtype=np.float32)
    m = nextitem.ranking_metrics(scores, held, k=1)
    # case 1: item 1 (the input) is out, item 2 outranks 3: rank 1, a miss at k=1; case 2: three-way tie, rank 1
    assert m == {"hr": 0.0, "ndcg": 0.0, "mrr": 0.0, "cases": 2}
    m = nextitem.ranking_metrics(scores, held, k=2)
    assert m["hr"] == 1.0 and m["mrr"] == pytest.approx(0.5) and m["ndcg"] == pytest.approx(1 / np.log2(3))


def test_cases_never_put_the_target_in_its_own_input():
    weights = random_weights(["a", "b", "c"])
    held = nextitem.cases([Session("u", 0, 1, ["a", "b", "c"]), Session("v", 0, 1, ["z", "c"]),
                           Session("w", 0, 1, ["a", "unknown"])], weights, max_len=20)
    assert held.users == ["u"]  # v's input is unknown to the model, w's target is
    assert all(t not in rows for t, rows in zip(held.targets, held.inputs, strict=True))


def test_the_signal_weight_stays_zero_unless_it_lifts_ndcg():
    held = nextitem.Cases(["u"], [np.array([1])], np.array([3]))
    base = np.array([[0.0, 1.0, 0.5]], dtype=np.float32)
    assert nextitem.tune_weight(base, np.array([[0.0, 0.0, 0.0]]), held, [0.0, 1.0], 1)[0] == 0.0
    assert nextitem.tune_weight(base, np.array([[0.0, 0.0, 1.0]]), held, [0.0, 1.0], 1)[0] == 1.0


def test_weights_are_written_and_mapped_back_read_only(tmp_path):
    weights = random_weights(["a", "b"])
    write_weights(weights, str(tmp_path / "lake" / "sequence_model" / "v1"))
    back = read_weights(str(tmp_path / "lake" / "sequence_model" / "v1"), str(tmp_path / "cache"))
    assert back.item_ids == ["a", "b"] and isinstance(back.embeddings, np.memmap)
    assert np.array_equal(back.logits(np.array([1])), weights.logits(np.array([1])))
    assert read_weights(str(tmp_path / "lake" / "sequence_model" / "v2"), str(tmp_path / "cache")) is None
    save(weights, tmp_path / "plain")
    assert not isinstance(load(tmp_path / "plain", mmap=False).w_h, np.memmap)


def _lists(model, weights, recent):
    recs = Recommender(lambda: model, FakeOnline(recent=recent), CFG).recommend(
        "u1", RecommendationQuery(6, weights=weights, explain=True))
    return [(i.item_id, i.score, i.reasons, i.contributions) for i in recs.items]


def test_zero_weight_gives_todays_lists_exactly():
    today = CFG.merge.model_copy(update={"sequence": 0.0})
    with_model = shop_model(sequence=random_weights(["a1", "a2", "b1", "b2", "c1", "zz"]))
    for recent in ([], ["b1"], ["a1", "c1", "b2"]):
        assert _lists(with_model, today, recent) == _lists(shop_model(), today, recent)


def test_the_sequence_signal_scores_the_session_and_says_so():
    weights = random_weights(["a1", "a2", "a3", "b1", "b2", "c1", "zz"], seed=3)
    model = shop_model(sequence=weights)
    only = MergeWeights(**dict.fromkeys(MergeWeights.model_fields, 0.0)).model_copy(update={"sequence": 1.0})
    recs = Recommender(lambda: model, FakeOnline(recent=["b1", "a2"]), CFG).recommend(
        "u1", RecommendationQuery(3, weights=only, explain=True))
    session = weights.rows_of(["a2", "b1"])  # oldest first
    expected = probabilities(weights.logits(session))
    for item in recs.items:
        assert item.contributions["sequence"] == pytest.approx(expected[weights.row[item.item_id] - 1], rel=1e-5)
    explained = [r for i in recs.items for r in i.reasons if r.startswith("because of this session: ")]
    assert explained and all(set(r.split(": ")[1].split(", ")) <= {"a2", "b1"} for r in explained)
