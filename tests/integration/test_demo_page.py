"""The demo page in headless Chromium against the real stack: a synthetic model published into this test's own
Delta root, the API (werkzeug, in a thread) and the real streaming job (spark-submit subprocess) on this test's
topic and Redis namespace. A shopper views items of one category; their recommendations change within seconds
and that category rises. Screenshots of the page and of /reports go to .local/artifacts/.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select
from werkzeug.serving import make_server

from api import create_app
from recsys.config import PROJECT_ROOT, Settings, load_settings
from recsys.demo.synthetic_model import make_model, publish_model
from recsys.kafka.topics import ensure_topics
from recsys.reports.evaluation_report import render_report, write_report
from recsys.stores.online_store import RedisOnlineStore

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.browser, pytest.mark.timeout(300)]

V1, V2 = "2026-01-01.1", "2026-01-02.1"
N_USERS, N_ITEMS, RANK, N_CATEGORIES = 200, 300, 8, 6
ALS = {"ndcg": 0.12, "precision": 0.05, "map": 0.04, "recall": 0.2, "coverage": 0.3}
VIEWS = 4  # views of the chosen category: the one on the list, then similar items of it
STREAM_START_S, CHANGE_S, PAGE_S = 180, 15, 20  # waits: the stream's first event, a changed list, the page
ARTIFACTS = PROJECT_ROOT / ".local" / "artifacts"
KEY_ENVS = ("RECSYS_API_KEYS", "RECSYS_READ_KEYS", "RECSYS_INGEST_KEYS", "RECSYS_CATALOGUE_KEYS",
            "RECSYS_USER_DATA_KEYS", "RECSYS_ADMIN_KEYS", "PROMETHEUS_MULTIPROC_DIR")


def wait_for(check: Callable[[], object], timeout_s: float, what: str, alive: Callable[[], None] = lambda: None):
    """Poll until `check()` is truthy (its value is returned); `alive()` raises when a process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive()
        with contextlib.suppress(StaleElementReferenceException):
            value = check()
            if value:
                return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not seen within {timeout_s:.0f}s")


@contextlib.contextmanager
def stream_job(environ: dict, log_path: Path) -> Iterator[Callable[[], None]]:
    """The speed-layer job as `make stream` runs it; yields a check that raises if it exited."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "recsys.spark.submit", "spark_jobs/stream.py"],
                                cwd=PROJECT_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def alive() -> None:
        assert proc.poll() is None, f"stream exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"

    try:
        yield alive
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


@contextlib.contextmanager
def api_server(settings: Settings) -> Iterator[str]:
    """The API on an ephemeral loopback port, served by werkzeug in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@contextlib.contextmanager
def chromium() -> Iterator[WebDriver]:
    """Debian's chromium and chromium-driver (installed by make setup), headless."""
    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser and driver_path, "chromium / chromedriver not found: run `make setup` (apt chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1500,1300"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def shown(driver: WebDriver, list_id: str) -> list[tuple[str, str]]:
    """(item id, category) of a list on the page, in rank order.

    Read in one script, so a list the page re-renders meanwhile cannot leave stale elements half read.
    """
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]),"
        " li => [li.getAttribute('data-item'), li.getAttribute('data-category')]);",
        f"#{list_id} li.item")
    return [(item, category) for item, category in rows]


def standing(items: list[tuple[str, str]], category: str) -> tuple[int, int]:
    """How well a category does in a list: (items of it, minus the best rank of one), larger is better."""
    ranks = [rank for rank, (_, c) in enumerate(items) if c == category]
    return len(ranks), -(ranks[0] if ranks else len(items))


def view(driver: WebDriver, list_id: str, item: str) -> None:
    """Click an item's view button; the page may re-render the list between finding the button and the click."""
    selector = f'#{list_id} li[data-item="{item}"] button[data-event="view"]'
    for attempt in range(3):
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return
        except StaleElementReferenceException:
            if attempt == 2:
                raise


def test_demo_page_follows_a_shopper_in_real_time(settings, tmp_path, redis_client, monkeypatch):
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)
    tag = f"demo{uuid.uuid4().hex[:6]}"
    environ = {**os.environ, "RECSYS_ENV": "test",
               "RECSYS__STORAGE__DELTA_ROOT": str(tmp_path / "delta"),
               "RECSYS__STORAGE__CHECKPOINT_ROOT": str(tmp_path / "checkpoints"),
               "RECSYS__STORAGE__REPORTS_ROOT": str(tmp_path / "reports"),
               "RECSYS__KAFKA__EVENTS_TOPIC": f"test-{tag}",
               "RECSYS__REDIS__KEY_PREFIX": f"{settings.redis.key_prefix}:{tag}"}
    own = load_settings("test", environ=environ)
    ensure_topics(own)
    for day, version in enumerate((V1, V2), 1):  # an earlier version, so /reports has history to chart
        publish_model(own, make_model(version, N_USERS, N_ITEMS, RANK, N_CATEGORIES),
                      metrics={"als": {k: v * day for k, v in ALS.items()}, "popularity": ALS})
    write_report(render_report(V2, {"als": ALS}, [], {"status": "approved"}, own.evaluation.k), own.report_path(V2))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with stream_job(environ, tmp_path / "stream.log") as alive, api_server(own) as base, chromium() as driver:
        driver.get(f"{base}/demo")
        wait_for(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready"), PAGE_S, "page ready")
        assert driver.find_element(By.ID, "status-model").text == V2
        # The stream is live once an event comes back through Kafka, Spark and Redis.
        probe = f"probe-{tag}"
        requests.post(f"{base}/v1/events", json={"user_id": probe, "item_id": "i0", "event_type": "view"},
                      timeout=10).raise_for_status()
        online = RedisOnlineStore(own.redis)
        started = time.monotonic()
        wait_for(lambda: online.recent_items(probe, 1), STREAM_START_S, "the probe event in Redis", alive)
        print(f"stream live after {time.monotonic() - started:.1f}s")

        picker = Select(driver.find_element(By.ID, "shopper"))
        shopper = picker.options[1].get_attribute("value")
        picker.select_by_value(shopper)
        wait_for(lambda: driver.find_element(By.ID, "recs").get_attribute("data-shopper") == shopper
                 and len(shown(driver, "recs")) == own.demo.k,
                 PAGE_S, "the shopper's recommendations")
        before = shown(driver, "recs")
        counts = {c: sum(1 for _, other in before if other == c) for _, c in before}
        rank = min(range(len(before)), key=lambda r: (counts[before[r][1]], -r))  # rarest category, lowest rank
        item, category = before[rank]
        start = standing(before, category)

        clicked = time.monotonic()
        view(driver, "recs", item)
        viewed = [item]
        while len(viewed) < VIEWS:  # then similar items of the same category, one after the other
            wait_for(lambda v=viewed: driver.find_element(By.ID, "similar-of").text == v[-1]
                     and shown(driver, "similar"), PAGE_S, f"items similar to {viewed[-1]}")
            more = [i for i, c in shown(driver, "similar") if c == category and i not in viewed]
            if not more:
                break
            view(driver, "similar", more[0])
            viewed.append(more[0])
        changed = wait_for(lambda: shown(driver, "recs") != before and time.monotonic(), CHANGE_S,
                           "a changed recommendation list", alive)
        print(f"viewed {viewed} ({category}); list changed {changed - clicked:.2f}s after the first view")
        risen = wait_for(lambda: standing(shown(driver, "recs"), category) > start and shown(driver, "recs"),
                         CHANGE_S, f"category {category} rising from {start}", alive)
        print(f"before: {before}\nafter:  {risen}")
        assert driver.find_elements(By.CSS_SELECTOR, "#recs li.item.new, #recs li.item.up")  # highlighted
        wait_for(lambda: "ago" in driver.find_element(By.ID, "status-age").text, PAGE_S, "the stream's progress")
        assert driver.find_element(By.ID, "status-model").text == V2
        print("status panel:", driver.find_element(By.ID, "status").text.replace("\n", " | "))
        print("freshness shown:", driver.find_element(By.ID, "status-freshness").text)
        screenshot = ARTIFACTS / "demo-page.png"
        assert driver.save_screenshot(str(screenshot))
        print(f"screenshot: {screenshot}")

        driver.find_element(By.ID, "reports-link").click()
        row = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, f'tr[data-version="{V2}"]'), PAGE_S, "/reports")
        assert "(current)" in row.text and driver.find_elements(By.CSS_SELECTOR, "#chart img")
        assert driver.find_elements(By.CSS_SELECTOR, f'tr[data-version="{V1}"]')
        assert driver.save_screenshot(str(ARTIFACTS / "reports-page.png"))
        row.find_element(By.LINK_TEXT, "report").click()
        wait_for(lambda: driver.title == f"Model {V2} evaluation", PAGE_S, "the version's report")
