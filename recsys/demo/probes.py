"""HTTP and service probes the demo (and the freshness bench) uses: is it up, what does it serve."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import redis
import requests
from deltalake import DeltaTable

from recsys.config import PROJECT_ROOT, Settings
from recsys.contracts.tables import ITEMS
from recsys.demo.processes import RUN_DIR, start_background, tail
from recsys.kafka.topics import ensure_topics
from recsys.redis_client import redis_client
from recsys.stores.model_store import query_delta

SERVICES_SH = PROJECT_ROOT / "docker" / "local" / "services.sh"


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def services_ready(settings: Settings) -> str | None:
    """None when Redis answers and Kafka has this profile's topics (created here if missing), else why not."""
    try:
        redis_client(settings.redis, timeout_s=2).ping()
    except redis.RedisError as exc:
        return f"Redis at {settings.redis.url}: {exc}"
    try:
        created = ensure_topics(settings, timeout_s=10)
    except Exception as exc:  # KafkaUnavailableError, or any other broker error: not ready
        return f"Kafka at {settings.kafka.bootstrap_servers}: {exc}"
    if created:
        print(f"    created topics {', '.join(created)}")
    return None


def start_services(running: list[subprocess.Popen]) -> subprocess.Popen:
    """`services.sh up` in the background: it starts whichever of Redis and Kafka is down (nothing when both
    are up), while the load and the batch DAG, which need neither, run beside it."""
    proc = start_background("services", ["bash", str(SERVICES_SH), "up"])
    running.append(proc)
    return proc


def wait_for_services(settings: Settings, proc: subprocess.Popen) -> None:
    """Raise unless `services.sh up` succeeded and both answer (the topics created if missing)."""
    code = proc.wait()
    problem = services_ready(settings) if code == 0 else f"services.sh up exited with {code}"
    if problem is not None:
        log = RUN_DIR / "services.log"
        raise RuntimeError(f"{problem}; last lines of {log}:\n{tail(log)}")


def items_by_category(settings: Settings) -> dict[str, list[str]]:
    table = DeltaTable(settings.table_path(ITEMS.name))
    rows = query_delta(table, "SELECT item_id, category FROM t ORDER BY item_id")
    out: dict[str, list[str]] = {}
    for row in rows.to_pylist():
        out.setdefault(row["category"], []).append(row["item_id"])
    return out


def known_items(base: str) -> Callable[[list[str]], list[str]]:
    """Of some item ids, those the served model ranks (GET /v1/items leaves the others out)."""
    def known(ids: list[str]) -> list[str]:
        cards = requests.get(f"{base}/v1/items", params={"ids": ",".join(ids[:100])}, timeout=5).json()
        return [card["item_id"] for card in cards.get("items", [])]
    return known


def get_recommendations(base: str, user: str, k: int) -> dict:
    return requests.get(f"{base}/v1/users/{user}/recommendations?k={k}", timeout=5).json()


def item_ids(recs: dict) -> list[str]:
    return [i["item_id"] for i in recs["items"]]
