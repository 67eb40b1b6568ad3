"""What the demo and report pages read through the library: status, item cards, shoppers, registry summaries."""

import base64
import json
import re
from datetime import UTC, datetime

import pytest
import redis

from recsys.config import load_settings
from recsys.contracts import model_version as mv
from recsys.reports.evaluation_report import read_report, render_report, write_report
from recsys.reports.report_pages import comparison_chart, find_version, metric_columns, version_summaries
from recsys.services.status import QueryProgress, query_progress, service_status
from recsys.serving.recommender import ItemCard, Recommender
from tests.unit.serving_fakes import FakeOnline, shop_model

pytestmark = pytest.mark.unit
CFG = load_settings("test", environ={}).serving
IMAGE = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
ALS = {"ndcg": 0.2, "precision": 0.1, "map": 0.05, "recall": 0.3, "coverage": 0.4}


class Progress:
    def __init__(self, hashes=None, down=False):
        self.hashes, self.down = hashes or {}, down

    def stream_progress(self, query):
        if self.down:
            raise redis.ConnectionError("down")
        return self.hashes.get(query, {})


def test_progress_hash_becomes_typed_values_with_age():
    fields = {"batch_id": "12", "lag_mean_s": "0.25", "lag_max_s": "0.5", "kafka_lag": "3", "seconds": "0.1",
              "updated_at": "100.0"}
    assert query_progress(fields, now=101.5) == QueryProgress(12, 0.25, 0.5, 3, 0.1, 1.5)
    assert query_progress({"lag_mean_s": "nan", "kafka_lag": "x"}, now=1.0) == QueryProgress()


def test_status_names_the_model_and_every_query_and_survives_redis_down():
    status = service_status("v1", Progress({"events_to_redis": {"batch_id": "4", "updated_at": "9"}}), now=10.0)
    assert status.model_version == "v1" and status.redis
    assert set(status.stream) == {"events_to_redis", "events_to_bronze"}
    assert status.stream["events_to_redis"].batch_id == 4 and status.stream["events_to_redis"].age_s == 1.0
    assert status.stream["events_to_bronze"] == QueryProgress()
    down = service_status(None, Progress(down=True))
    assert (down.model_version, down.redis, down.stream) == (None, False, {})


def test_item_cards_and_known_users_come_from_the_served_model():
    recommender = Recommender(shop_model, FakeOnline(), CFG)
    assert recommender.describe(["b3", "a1", "nope", "a1"]) == [
        ItemCard("b3", "bags", "bolt", None), ItemCard("a1", "shoes", "acme", 10.0)]
    assert recommender.known_users(5) == ["u1"]
    empty = Recommender(lambda: None, FakeOnline(), CFG)
    assert empty.describe(["a1"]) == [] and empty.known_users(5) == []


def _row(version, day, status=mv.APPROVED, metrics="{}", published_at=None):
    return {"model_version": version, "status": status, "created_at": datetime(2026, 1, day, tzinfo=UTC),
            "published_at": published_at, "run_date": f"2026-01-{day:02d}", "metrics": metrics,
            "gate_reason": "ok", "report_uri": None, "n_users": 1, "n_items": 2, "n_interactions": 3}


def test_summaries_newest_first_with_current_flag_and_clean_metrics():
    rows = [_row("2026-01-01.1", 1, mv.PUBLISHED, '{"als": {"ndcg": 0.1, "bad": "x"}, "popularity": {"ndcg": 0.05}}',
                 datetime(2026, 1, 1, tzinfo=UTC)),
            _row("2026-01-03.1", 3, mv.REJECTED, "not json"),
            _row("2026-01-02.1", 2, mv.PUBLISHED, "", datetime(2026, 1, 2, tzinfo=UTC))]
    summaries = version_summaries(rows)
    assert [s.version for s in summaries] == ["2026-01-03.1", "2026-01-02.1", "2026-01-01.1"]
    assert [s.current for s in summaries] == [False, True, False]
    oldest = find_version(summaries, "2026-01-01.1")
    assert oldest.chosen == {"ndcg": 0.1} and oldest.baselines == {"popularity": {"ndcg": 0.05}}
    assert summaries[0].metrics == {} and find_version(summaries, "nope") is None
    assert metric_columns(summaries, 10) == [("ndcg", "NDCG@10")]


def test_chart_compares_the_current_version_with_earlier_ones_or_is_none():
    assert comparison_chart(version_summaries([_row("2026-01-01.1", 1)]), 10, 3) is None
    rows = [_row(f"2026-01-0{day}.1", day, mv.PUBLISHED, json.dumps({"als": ALS, "popularity": ALS}),
                 datetime(2026, 1, day, tzinfo=UTC)) for day in range(1, 5)]
    chart = comparison_chart(version_summaries(rows), 10, 3)
    (data,) = IMAGE.findall(chart)
    assert base64.b64decode(data).startswith(b"\x89PNG")
    assert 'alt="2026-01-04.1 against its baselines and earlier versions"' in chart


def test_read_report_returns_what_was_written_or_none(tmp_path):
    page = render_report("v1", {"als": ALS}, [], {}, k=10)
    write_report(page, str(tmp_path / "v1.html"))
    assert read_report(str(tmp_path / "v1.html")) == page
    assert read_report(str(tmp_path / "missing.html")) is None
