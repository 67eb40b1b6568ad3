"""Session preparation with Spark (order, session ids and gaps, no repeated item) and bench/sequence.py at its
smoke size (the whole train_and_evaluate run the batch stage makes)."""

import sys
from datetime import datetime, timedelta

import pytest

from recsys.batch.backfill import from_pandas
from recsys.config import PROJECT_ROOT
from recsys.contracts.tables import EVENT_PAYLOAD_DDL
from recsys.sequence.sessions import collect_sessions, session_frame

pytestmark = pytest.mark.spark
T0 = datetime(2026, 11, 1, 9, 0)


def test_sessions_keep_event_order_cut_on_gaps_and_count_an_item_once(spark):
    import pandas as pd

    def event(n, user, item, minutes, session=None, kind="view"):
        return {"event_id": f"e{n}", "user_id": user, "item_id": item, "event_type": kind,
                "ts": T0 + timedelta(minutes=minutes), "session_id": session, "kafka_offset": n}

    rows = [event(0, "u", "b", 0, "inv1", "purchase"), event(1, "u", "a", 0, "inv1", "purchase"),  # same ts: offset
            event(2, "u", "c", 0, "inv1", "purchase"), event(3, "u", "a", 1, "inv1", "purchase"),  # a repeated
            event(4, "v", "x", 0), event(5, "v", "y", 5), event(6, "v", "x", 10),  # one session, x once
            event(7, "v", "z", 100), event(8, "v", "w", 101),  # 90 minutes later: a new session
            event(9, "v", "q", 102, kind="remove_from_cart"),  # not a session event type
            event(10, "w", "lonely", 0)]  # one item: dropped
    events = from_pandas(spark, pd.DataFrame(rows), EVENT_PAYLOAD_DDL + ", kafka_offset BIGINT")
    sessions = collect_sessions(session_frame(events, ["view", "purchase"], gap_s=1800, min_items=2))
    by_user = sorted((s.user_id, s.items) for s in sessions)
    assert by_user == [("u", ["b", "a", "c"]), ("v", ["x", "y"]), ("v", ["z", "w"])]
    assert all(len(set(s.items)) == len(s.items) for s in sessions)  # a held-out last item is never in its input
    assert all(s.start_s <= s.end_s for s in sessions)


def test_the_sequence_bench_prints_the_model_against_its_baselines(spark, settings, monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "bench"))
    sys.modules.pop("sequence", None)
    import sequence

    spark.sparkContext.setCheckpointDir(settings.checkpoint_path("bench-als"))
    table = sequence.run(spark, settings, smoke=True, requests=20)
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if len(line.split()) == 4}
    for model in ("sequence", "als", "item_knn", "recent", "merged", "merged+sequence"):
        assert model in rows and all(0.0 <= float(v) <= 1.0 for v in rows[model]), model
    assert "best of ALS and item-kNN" in table and "inference p50" in table and "training" in table
