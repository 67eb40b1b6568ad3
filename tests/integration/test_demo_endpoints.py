"""The demo page's endpoints and the report pages on real Redis and Delta (delta-rs): two synthetic versions with
metrics, one gate report written, the stream's progress written by hand (no Spark)."""

import json
import time
import uuid

import pytest

from api import create_app
from recsys.config import Settings
from recsys.contracts.redis_keys import REALTIME_QUERY, RedisKeys
from recsys.demo.synthetic_model import make_model, publish_model
from recsys.reports.evaluation_report import render_report, write_report

pytestmark = pytest.mark.integration

V1, V2 = "2026-01-01.1", "2026-01-02.1"
ALS = {"ndcg": 0.12, "precision": 0.05, "map": 0.04, "recall": 0.2, "coverage": 0.3}
KEY_ENVS = ("RECSYS_API_KEYS", "RECSYS_READ_KEYS", "RECSYS_INGEST_KEYS", "RECSYS_CATALOGUE_KEYS",
            "RECSYS_USER_DATA_KEYS", "RECSYS_ADMIN_KEYS", "PROMETHEUS_MULTIPROC_DIR")


def _with(settings: Settings, **sections: dict) -> Settings:
    return settings.model_copy(update={
        name: getattr(settings, name).model_copy(update=values) for name, values in sections.items()})


@pytest.fixture
def lake(settings, tmp_path, topics, redis_client, monkeypatch) -> Settings:
    """Own Delta root, reports root and Redis namespace; V1 then V2 published with metrics, V2's report written."""
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)
    own = _with(settings, storage={"delta_root": str(tmp_path / "delta"), "reports_root": str(tmp_path / "reports")},
                redis={"key_prefix": f"{settings.redis.key_prefix}:d{uuid.uuid4().hex[:8]}"})
    for day, version in enumerate((V1, V2), 1):
        metrics = {"als": {k: v * day for k, v in ALS.items()}, "popularity": ALS}
        publish_model(own, make_model(version, 60, 90, 8, 4), metrics=metrics)
    write_report(render_report(V2, {"als": ALS}, [], {"status": "approved"}, own.evaluation.k), own.report_path(V2))
    return own


def client(settings: Settings):
    app = create_app(settings)
    app.testing = True
    return app.test_client()


def test_status_reports_model_and_stream_progress(lake, redis_client):
    api = client(lake)
    body = api.get("/v1/status").json
    assert body["model_version"] == V2 and body["redis"] is True
    assert body["stream"][REALTIME_QUERY]["age_s"] is None  # the stream never reported
    redis_client.hset(RedisKeys(lake.redis.key_prefix).stream_progress(REALTIME_QUERY), mapping={
        "batch_id": 7, "lag_mean_s": 0.2, "lag_max_s": 0.4, "kafka_lag": 0, "seconds": 0.1,
        "updated_at": time.time() - 2})
    live = api.get("/v1/status").json["stream"][REALTIME_QUERY]
    assert (live["batch_id"], live["lag_mean_s"], live["lag_max_s"], live["kafka_lag"]) == (7, 0.2, 0.4, 0)
    assert 1.5 < live["age_s"] < 30


def test_shoppers_and_item_cards_come_from_the_served_model(lake):
    api = client(lake)
    shoppers = api.get("/v1/demo/shoppers").json["shoppers"]  # the model's first users, which it sorts by id
    assert len(shoppers) == lake.demo.shoppers and shoppers == sorted(shoppers) and shoppers[:2] == ["u0", "u1"]
    items = api.get("/v1/items?ids=i3,nope,i1").json["items"]
    assert [i["item_id"] for i in items] == ["i3", "i1"]
    assert all(i["category"].startswith("c") and i["brand"] and i["price"] > 0 for i in items)
    assert api.get("/v1/items?ids=a,,b").status_code == 400


def test_demo_page_and_its_assets(lake):
    api = client(lake)
    page = api.get("/demo")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    config = json.loads(html.split('<script id="demo-config" type="application/json">')[1].split("</script>")[0])
    assert (config["k"], config["pollIntervalMs"]) == (lake.demo.k, lake.demo.poll_interval_ms)
    assert 'href="/reports"' in html
    for name, mimetype in (("demo.js", "text/javascript"), ("demo.css", "text/css")):
        asset = api.get(f"/demo/static/{name}")
        assert asset.status_code == 200 and asset.mimetype == mimetype, name
    assert api.get("/demo/static/missing.js").json["error"] == "not_found"
    assert api.get("/demo/static/..%2Ftemplates%2Fdemo.html").status_code == 404  # never outside the folder
    assert api.get("/demo/static/demo.html").json["error"] == "invalid_request"  # only scripts and styles


def test_reports_list_versions_with_metrics_chart_and_report(lake):
    api = client(lake)
    html = api.get("/reports").get_data(as_text=True)
    assert html.index(f'data-version="{V2}"') < html.index(f'data-version="{V1}"')  # newest first
    assert "(current)" in html and "NDCG@10" in html and f"{ALS['ndcg'] * 2:.4f}" in html
    assert 'src="data:image/png;base64,' in html and f"{V2} against its baselines and earlier versions" in html
    report = api.get(f"/reports/{V2}")
    assert report.status_code == 200 and f"Model {V2} evaluation" in report.get_data(as_text=True)
    assert api.get(f"/reports/{V1}").json["error"] == "report_not_found"
    assert api.get("/reports/2099-01-01.1").json["error"] == "unknown_version"


def test_pages_are_off_unless_demo_enabled(lake):
    api = client(_with(lake, demo={"enabled": False}))
    for path in ("/demo", "/reports", "/v1/demo/shoppers"):
        assert api.get(path).status_code == 404, path
    assert api.get("/v1/status").status_code == 200


def test_with_keys_the_pages_stay_open_and_their_data_needs_a_key(lake, monkeypatch):
    monkeypatch.setenv("RECSYS_READ_KEYS", "demo-key")
    api = client(lake)
    for path in ("/demo", "/demo/static/demo.js", "/reports", f"/reports/{V2}"):
        assert api.get(path).status_code == 200, path
    for path in ("/v1/status", "/v1/demo/shoppers", "/v1/items?ids=i1"):
        assert api.get(path).status_code == 401, path
        assert api.get(path, headers={"X-API-Key": "demo-key"}).status_code == 200, path
