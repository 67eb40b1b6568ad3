"""A newly published model reaches the running speed layer without a restart, and its state says which."""

import json
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from recsys.batch import registry
from recsys.contracts import model_version as mv
from recsys.contracts import redis_keys as rk
from recsys.contracts.redis_keys import decode_vector
from recsys.contracts.tables import ITEM_FACTORS, USER_FACTORS
from recsys.spark.delta import conform, ensure_table
from recsys.speed.stream import ModelVersionWatcher, apply_realtime_batch
from recsys.stores.registry_store import activate_version
from tests.integration.conftest import stored_profile

pytestmark = [pytest.mark.integration, pytest.mark.spark]
KAFKA_ROWS = "value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP"


def _publish(spark, settings, version: str, items: dict[str, list[float]]) -> None:
    for spec, rows in ((ITEM_FACTORS, [(version, i, f, 1.0) for i, f in items.items()]),
                       (USER_FACTORS, [(version, "someone-else", [0.1, 0.1])])):
        ensure_table(spark, settings, spec)
        columns = spec.columns if spec is ITEM_FACTORS else ["model_version", "user_id", "factors"]
        (conform(spark.createDataFrame(rows, columns), spark, spec).write.format("delta").mode("append")
         .partitionBy(*spec.partition_by).save(settings.table_path(spec.name)))
    registry.record_candidate(settings, registry.RegistryEntry(
        version, "2026-11-01", {}, None, None, 1, len(items), 0))
    registry.set_status(settings, version, mv.APPROVED)  # only a version past the gate is activated
    activate_version(settings, version)


def _view(spark, user: str, item: str, offset: int):
    value = json.dumps({"event_id": f"{user}-{offset}", "user_id": user, "item_id": item, "event_type": "click",
                        "ts": datetime.now(UTC).isoformat()}).encode()
    return spark.createDataFrame([(value, f"t-{user}", 0, offset, datetime.now(UTC))], KAFKA_ROWS)


def test_the_stream_folds_into_a_newly_published_model_without_a_restart(spark, own_lake, redis_client):
    user, query = f"handover-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"
    first, second = f"h{uuid.uuid4().hex[:6]}.1", f"h{uuid.uuid4().hex[:6]}.2"
    watcher = ModelVersionWatcher(own_lake)
    assert watcher.current() is None
    apply_realtime_batch(_view(spark, user, "b1", 0), 0, own_lake, query, watcher.current())
    fields, raw = stored_profile(own_lake, user)
    assert fields[rk.PROFILE_EVENTS] == 1 and rk.PROFILE_MODEL not in fields and raw is None  # no model, no vector

    _publish(spark, own_lake, first, {"a1": [1.0, 0.0], "b1": [0.0, 1.0]})
    apply_realtime_batch(_view(spark, user, "b1", 1), 1, own_lake, query, watcher.current())
    assert stored_profile(own_lake, user)[0][rk.PROFILE_MODEL] == first

    _publish(spark, own_lake, second, {"a1": [0.0, 1.0], "b1": [1.0, 0.0]})  # the axes swap
    apply_realtime_batch(_view(spark, user, "b1", 2), 2, own_lake, query, watcher.current())
    fields, raw = stored_profile(own_lake, user)
    assert fields[rk.PROFILE_MODEL] == second
    vector = decode_vector(raw, 2)
    assert float(vector @ np.array([1.0, 0.0])) > 0  # folded against the new factors of b1
    assert fields[rk.PROFILE_EVENTS] == 3
