import base64
import re

import pytest

from recsys.reports.evaluation_report import Trial, render_report, write_report

pytestmark = pytest.mark.unit

METRICS = {
    "popularity": {"ndcg": 0.11112, "precision": 0.05, "map": 0.04, "recall": 0.2, "coverage": 0.01},
    "als": {"ndcg": 0.23456, "precision": 0.12, "map": 0.09, "recall": 0.31, "coverage": 0.42},
    "item_knn": {"ndcg": 0.2, "precision": 0.13, "map": 0.08, "recall": 0.3, "coverage": 0.55},
}
TRIALS = [
    Trial(0, {"rank": 32, "reg_param": 0.1, "alpha": 1.0, "max_iter": 10}, 0.18, 12.5),
    Trial(1, {"rank": 64, "reg_param": 1.0, "alpha": 5.0, "max_iter": 15}, 0.24, 20.0),
    Trial(2, {"rank": 16, "reg_param": 0.01, "alpha": 40.0, "max_iter": 10}, 0.21, 8.0),
]
DETAILS = {"status": "candidate", "run date": "2026-11-28", "gate": "passes"}
IMAGE = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def test_page_shows_version_models_and_metrics():
    page = render_report("v20261128-ab12", METRICS, TRIALS, DETAILS, k=10)
    assert "v20261128-ab12" in page
    for model, values in METRICS.items():
        assert model in page
        for value in values.values():
            assert f"{value:.4f}" in page
    for label in ("NDCG@10", "P@10", "MAP@10", "R@10", "coverage"):
        assert label in page
    for key, value in DETAILS.items():
        assert key in page and value in page
    assert page.index(">als<") < page.index(">popularity<")  # the chosen model comes first


def test_best_value_per_column_is_bold():
    page = render_report("v1", METRICS, [], {}, k=10)
    for best in ("0.2346", "0.1300", "0.0900", "0.3100", "0.5500"):
        assert f"<b>{best}</b>" in page
    for not_best in ("0.1111", "0.0500", "0.4200"):
        assert f"<b>{not_best}</b>" not in page
    assert page.count("<b>") == 5


def test_trials_give_two_png_charts_and_mark_the_best_trial():
    page = render_report("v1", METRICS, TRIALS, DETAILS, k=10)
    images = IMAGE.findall(page)
    assert len(images) == 2
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert "rank=64, reg_param=1, alpha=5, max_iter=15" in page
    assert "0.2400" in page and "20.0" in page
    best_row = re.search(r'<tr class=.best.>(.*?)</tr>', page).group(1)
    assert "<td>1 ★ best</td>" in best_row
    assert page.count("★ best") == 1
    assert "Tuning was off" not in page


def test_without_trials_tuning_is_reported_off():
    page = render_report("v1", METRICS, [], DETAILS, k=5)
    assert "Tuning was off" in page
    assert len(IMAGE.findall(page)) == 1
    assert "NDCG@5" in page


def test_strings_are_html_escaped():
    evil = "<script>alert(1)</script>"
    page = render_report(evil, {evil: {"ndcg": 0.1}, "als": {"ndcg": 0.2}}, [], {evil: evil}, k=10)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_write_report_creates_parent_dirs(tmp_path):
    page = render_report("v1", METRICS, TRIALS, DETAILS, k=10)
    target = tmp_path / "reports" / "model_version=v1" / "report.html"
    write_report(page, str(target))
    assert target.read_text(encoding="utf-8") == page


def test_write_report_accepts_file_uri(tmp_path):
    target = tmp_path / "a" / "b" / "report.html"
    write_report("<p>é</p>", target.as_uri())
    assert target.read_text(encoding="utf-8") == "<p>é</p>"


def test_the_served_ranking_is_the_chosen_model_and_older_versions_keep_als():
    from recsys.reports.evaluation_report import chosen_model

    assert chosen_model({"served": {"ndcg": 0.3}, "als": {"ndcg": 0.2}}) == "served"
    assert chosen_model({"als": {"ndcg": 0.2}, "popularity": {"ndcg": 0.1}}) == "als"
    page = render_report("v1", {"als": {"ndcg": 0.2}, "served": {"ndcg": 0.3}}, [], {}, k=10)
    assert page.index(">served<") < page.index(">als<")
