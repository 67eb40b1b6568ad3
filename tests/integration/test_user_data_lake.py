"""The delta-rs writers behind the user-data and admin endpoints, on real Delta tables in a temp dir:
attribute upserts, commit conflicts, activating a model version, and deleting a user's rows."""

import json
import os
import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from recsys.config import load_settings
from recsys.contracts import model_version as mv
from recsys.contracts.catalogue import ItemAttributes, UserAttributes
from recsys.contracts.tables import (
    ALL_TABLES,
    EVENTS_BRONZE,
    ITEM_FACTORS,
    ITEMS,
    MODEL_REGISTRY,
    USER_DATA_TABLES,
    USER_FACTORS,
    USERS,
    split_top_level,
)
from recsys.stores.attribute_store import DeltaAttributeStore, UpsertCounts
from recsys.stores.delta_rs import CommitConflictError, arrow_schema, ensure_table, open_table, with_commit_retries
from recsys.stores.erasure_store import DeltaErasureStore
from recsys.stores.event_log import DeltaEventLog
from recsys.stores.model_store import DeltaModelStore, FactorDimensionError, query_delta
from recsys.stores.registry_store import RejectedVersionError, UnknownVersionError, activate_version

pytestmark = pytest.mark.integration
NOTHING = {spec.name: 0 for spec in USER_DATA_TABLES}  # what forgetting an unknown user deletes
# Spark's Delta schema for each DDL type: a table delta-rs creates must look the same to Spark's ensure_table.
SPARK_PRIMITIVES = {"STRING": "string", "INT": "integer", "BIGINT": "long", "DOUBLE": "double", "FLOAT": "float",
                    "DATE": "date", "TIMESTAMP": "timestamp", "BINARY": "binary", "BOOLEAN": "boolean"}


def spark_type(ddl: str):
    """The Delta log's type of a DDL type when Spark creates the column (nullable elements and values)."""
    if ddl.startswith("ARRAY<"):
        return {"type": "array", "elementType": spark_type(ddl[6:-1]), "containsNull": True}
    if ddl.startswith("MAP<"):
        key, value = split_top_level(ddl[4:-1])
        return {"type": "map", "keyType": spark_type(key), "valueType": spark_type(value), "valueContainsNull": True}
    return SPARK_PRIMITIVES[ddl]


@pytest.fixture
def lake(tmp_path):
    """Settings with a Delta root of this test's own (quick retries: conflicts are forced here)."""
    environ = {**os.environ, "RECSYS__STORAGE__DELTA_ROOT": str(tmp_path / "delta"),
               "RECSYS__DELTA_RS__COMMIT_BACKOFF_S": "0.01", "RECSYS__DELTA_RS__MAX_UPSERT_ROWS": "3"}
    return load_settings("test", environ=environ)


def rows(spec, *dicts):
    return pa.Table.from_pylist(list(dicts), schema=arrow_schema(spec))


def read(settings, spec, sql="SELECT * FROM t"):
    return query_delta(DeltaTable(settings.table_path(spec.name)), sql).to_pylist()


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda s: s.name)
def test_tables_created_by_delta_rs_have_the_schema_spark_creates(lake, spec):
    table = ensure_table(lake, spec)
    got = [(f["name"], f["type"], f["nullable"]) for f in json.loads(table.schema().to_json())["fields"]]
    assert got == [(name, spark_type(ddl), True) for name, ddl in spec.fields]
    assert table.metadata().partition_columns == list(spec.partition_by)
    assert ensure_table(lake, spec).version() == table.version()  # an existing table is left alone


def test_upserts_insert_then_update_by_id_and_stamp_updated_at(lake):
    store = DeltaAttributeStore(lake)
    before = datetime.now(UTC)
    assert store.upsert_items([ItemAttributes(item_id="i1", title="Red shoe", category="shoes", price=10.0),
                               ItemAttributes(item_id="i2", brand="acme")]) == UpsertCounts(2, 0)
    # i1 is replaced (a field left out becomes NULL), i3 is new, and a repeated id keeps its last row
    counts = store.upsert_items([ItemAttributes(item_id="i1", title="old"), ItemAttributes(item_id="i3"),
                                 ItemAttributes(item_id="i1", title="Blue shoe", price=12.0)])
    assert counts == UpsertCounts(inserted=1, updated=1)
    items = {r["item_id"]: r for r in read(lake, ITEMS)}
    assert set(items) == {"i1", "i2", "i3"}
    assert (items["i1"]["title"], items["i1"]["category"], items["i1"]["price"]) == ("Blue shoe", None, 12.0)
    assert items["i2"]["brand"] == "acme" and all(r["updated_at"] >= before for r in items.values())
    assert store.upsert_users([UserAttributes(user_id="u1", age_band="25-34", gender="f")]) == UpsertCounts(1, 0)
    assert read(lake, USERS)[0]["gender"] == "f"


def test_upserts_refuse_too_many_or_mistyped_rows_and_write_nothing_for_none(lake):
    store = DeltaAttributeStore(lake)
    with pytest.raises(ValueError, match="max_upsert_rows"):
        store.upsert_users([UserAttributes(user_id=f"u{i}") for i in range(4)])
    with pytest.raises(TypeError):
        store.upsert_users([ItemAttributes(item_id="i1")])
    assert store.upsert_items([]) == UpsertCounts(0, 0)
    assert open_table(lake, ITEMS) is None and open_table(lake, USERS) is None


def test_a_table_from_an_older_contract_gets_the_new_columns(lake):
    old = pa.schema([f for f in arrow_schema(ITEMS) if f.name != "brand"])
    DeltaTable.create(lake.table_path(ITEMS.name), old)
    DeltaAttributeStore(lake).upsert_items([ItemAttributes(item_id="i1", brand="acme")])
    assert read(lake, ITEMS)[0]["brand"] == "acme"


def test_concurrent_upserts_from_several_workers_all_land(lake):
    store, errors = DeltaAttributeStore(lake), []

    def worker(n: int) -> None:
        try:
            store.upsert_items([ItemAttributes(item_id=f"w{n}-{i}") for i in range(3)])
        except Exception as exc:  # collected: an assertion in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(read(lake, ITEMS)) == 12


def test_a_conflicting_commit_is_run_again_on_the_new_snapshot(lake):
    ensure_table(lake, USERS)
    write_deltalake(lake.table_path(USERS.name), rows(USERS, {"user_id": "u1"}, {"user_id": "u2"}), mode="append")
    stale = DeltaTable(lake.table_path(USERS.name))  # read before a concurrent append lands
    write_deltalake(lake.table_path(USERS.name), rows(USERS, {"user_id": "u1"}), mode="append")
    handles = [stale]

    def delete() -> int:
        table = handles.pop() if handles else DeltaTable(lake.table_path(USERS.name))
        return table.delete("user_id = 'u1'")["num_deleted_rows"]

    assert with_commit_retries(lake.delta_rs, "test delete", delete) == 2  # both u1 rows, after one conflict
    assert [r["user_id"] for r in read(lake, USERS)] == ["u2"]


def test_a_commit_that_keeps_conflicting_fails_clearly(lake):
    calls = []

    def always_conflicts() -> None:
        calls.append(1)
        raise CommitFailedError("a concurrent transaction added new data")

    with pytest.raises(CommitConflictError, match="conflicted with concurrent writers 6 times"):
        with_commit_retries(lake.delta_rs, "test", always_conflicts)
    assert len(calls) == lake.delta_rs.commit_retries + 1


def _registry(settings, *entries):
    """A registry written by delta-rs: (version, status, published_at or None, has factors)."""
    ensure_table(settings, MODEL_REGISTRY)
    write_deltalake(settings.table_path(MODEL_REGISTRY.name), rows(MODEL_REGISTRY, *[
        {"model_version": v, "run_date": v.split(".")[0], "status": status, "published_at": at,
         "created_at": datetime(2026, 11, 1, tzinfo=UTC), "gate_reason": "ndcg too low" if status == mv.REJECTED
         else None} for v, status, at, _ in entries]), mode="append")
    ensure_table(settings, ITEM_FACTORS)
    write_deltalake(settings.table_path(ITEM_FACTORS.name), rows(ITEM_FACTORS, *[
        {"model_version": v, "item_id": "i1", "factors": [0.1, 0.2], "popularity": 1.0}
        for v, _, _, factors in entries if factors]), mode="append")
    ensure_table(settings, USER_FACTORS)
    write_deltalake(settings.table_path(USER_FACTORS.name), rows(USER_FACTORS, *[
        {"model_version": v, "user_id": "u1", "factors": [0.3, 0.4]} for v, _, _, factors in entries if factors]),
        mode="append")


def test_activating_an_earlier_version_makes_it_current_in_one_commit(lake):
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    _registry(lake, ("2026-11-01.1", mv.PUBLISHED, t0, True), ("2026-11-02.1", mv.PUBLISHED, t0 + timedelta(days=1),
                                                                True), ("2026-11-03.1", mv.CANDIDATE, None, True))
    store = DeltaModelStore(lake)
    assert store.current_version() == "2026-11-02.1"
    registry_version = DeltaTable(lake.table_path(MODEL_REGISTRY.name)).version()
    assert activate_version(lake, "2026-11-01.1") == ("2026-11-02.1", "2026-11-01.1")
    assert store.current_version() == "2026-11-01.1"
    table = DeltaTable(lake.table_path(MODEL_REGISTRY.name))
    assert table.version() == registry_version + 1 and table.history(1)[0]["operation"] == "UPDATE"
    with pytest.raises(RejectedVersionError, match="candidate, not approved or published"):
        activate_version(lake, "2026-11-03.1")  # a candidate has not passed the gate
    assert activate_version(lake, "2026-11-02.1") == ("2026-11-01.1", "2026-11-02.1")  # forward again
    assert store.current_version() == "2026-11-02.1"
    assert store.load("2026-11-02.1").item_ids == ["i1"]


def test_activation_wins_even_against_a_published_at_from_a_clock_ahead(lake):
    # ahead + 1 µs is a time a float round trip (delta-rs' new_values) would bring back to `ahead`
    ahead = datetime(2099, 6, 15, 12, 0, 0, 13, tzinfo=UTC)
    _registry(lake, ("2026-11-01.1", mv.APPROVED, None, True), ("2026-11-02.1", mv.PUBLISHED, ahead, True))
    assert activate_version(lake, "2026-11-01.1") == ("2026-11-02.1", "2026-11-01.1")
    assert DeltaModelStore(lake).current_version() == "2026-11-01.1"
    stamps = {r["model_version"]: r["published_at"] for r in read(lake, MODEL_REGISTRY)}
    assert stamps["2026-11-01.1"] == ahead + timedelta(microseconds=1)


def test_only_registered_loadable_approved_or_published_versions_can_be_activated(lake):
    _registry(lake, ("2026-11-01.1", mv.PUBLISHED, datetime(2026, 11, 2, tzinfo=UTC), True),
              ("2026-11-02.1", mv.REJECTED, None, True), ("2026-11-03.1", mv.APPROVED, None, False))
    for version, reason in (("2026-12-01.1", "not registered"), ("2026-11-02.1", "rejected"),
                            ("2026-11-03.1", "no item factors"), ("x' OR '1'='1", "not registered")):
        with pytest.raises(UnknownVersionError, match=reason):
            activate_version(lake, version)
    assert DeltaModelStore(lake).current_version() == "2026-11-01.1"


def test_a_version_whose_user_and_item_factors_come_from_different_fits_is_not_loaded(lake):
    _registry(lake, ("2026-11-01.1", mv.PUBLISHED, datetime(2026, 11, 2, tzinfo=UTC), True))
    assert DeltaModelStore(lake).load("2026-11-01.1").user_factors.shape == (1, 2)
    # a second run of the date wrote its rank-3 user factors into the same version (the race claims prevent)
    write_deltalake(lake.table_path(USER_FACTORS.name), rows(USER_FACTORS, {
        "model_version": "2026-11-01.1", "user_id": "u2", "factors": [0.1, 0.2, 0.3]}), mode="append")
    with pytest.raises(FactorDimensionError, match=r"mixes factor ranks \[2, 3\]"):
        DeltaModelStore(lake).load("2026-11-01.1")


def test_activating_without_a_registry_is_an_unknown_version(lake):
    with pytest.raises(UnknownVersionError):
        activate_version(lake, "2026-11-01.1")


def _bronze(settings, *events):
    ensure_table(settings, EVENTS_BRONZE)
    write_deltalake(settings.table_path(EVENTS_BRONZE.name), rows(EVENTS_BRONZE, *[
        {**e, "event_date": e["ts"].date(), "quantity": 1, "ingested_at": e["ts"]} for e in events]), mode="append")


def _event(event_id, user, item, ts, **extra):
    return {"event_id": event_id, "user_id": user, "item_id": item, "event_type": "view", "ts": ts, **extra}


def test_a_users_latest_events_come_newest_first(lake):
    t0 = datetime(2026, 11, 1, 10, tzinfo=UTC)
    _bronze(lake, *[_event(f"e{i}", "u1", f"i{i}", t0 + timedelta(days=i)) for i in range(4)],
            _event("x", "u2", "i9", t0), _event("c", "u1", "i7", t0 - timedelta(days=1), context={"page": "home"}))
    log = DeltaEventLog(lake)
    latest = log.latest_events("u1", 2)
    assert [(e["event_id"], e["ts"]) for e in latest] == [("e3", t0 + timedelta(days=3)),
                                                          ("e2", t0 + timedelta(days=2))]
    assert log.latest_events("u1", 10)[-1]["context"] == {"page": "home"}
    assert log.latest_events("nobody", 5) == []
    with pytest.raises(ValueError):
        log.latest_events("u1", lake.delta_rs.max_history_events + 1)


def test_history_leaves_out_events_ingested_before_the_latest_erasure_whatever_their_ts(lake):
    erased = datetime(2026, 11, 3, 12, tzinfo=UTC)
    _bronze(lake, _event("late", "u1", "i1", erased + timedelta(hours=2),  # future-dated, sent before the erasure
                         kafka_timestamp=erased - timedelta(minutes=1)),
            _event("back", "u1", "i2", erased + timedelta(hours=1), kafka_timestamp=erased + timedelta(hours=1)),
            _event("old", "u1", "i3", erased - timedelta(days=1)),  # backfilled: ingested_at decides
            _event("other", "u2", "i1", erased - timedelta(days=1)))
    log = DeltaEventLog(lake)
    assert [e["event_id"] for e in log.latest_events("u1", 10)] == ["late", "back", "old"]
    DeltaErasureStore(lake).record_erasure("u1", erased)
    assert [e["event_id"] for e in log.latest_events("u1", 10)] == ["back"]
    assert [e["event_id"] for e in log.latest_events("u2", 10)] == ["other"]


def test_deleting_a_user_removes_their_rows_from_every_user_table(lake):
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    _bronze(lake, _event("e1", "u1", "i1", t0), _event("e2", "u1", "i2", t0 + timedelta(days=1)),
            _event("e3", "u1:x", "i1", t0))
    DeltaAttributeStore(lake).upsert_users([UserAttributes(user_id="u1"), UserAttributes(user_id="u1:x")])
    ensure_table(lake, USER_FACTORS)
    write_deltalake(lake.table_path(USER_FACTORS.name), rows(USER_FACTORS, *[
        {"model_version": v, "user_id": u, "factors": [1.0]} for v in ("v1", "v2") for u in ("u1", "u1:x")]),
        mode="append")
    lake_store = DeltaErasureStore(lake)
    assert lake_store.delete_user_rows("u1") == NOTHING | {"events_bronze": 2, "users": 1, "user_factors": 2}
    assert {r["user_id"] for spec in (EVENTS_BRONZE, USERS, USER_FACTORS) for r in read(lake, spec)} == {"u1:x"}
    assert lake_store.delete_user_rows("u1") == NOTHING


def test_deleting_from_tables_that_do_not_exist_counts_nothing(lake):
    assert DeltaErasureStore(lake).delete_user_rows("u1") == NOTHING


def test_deleting_rides_out_the_stream_appending_to_bronze(lake):
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    _bronze(lake, *[_event(f"e{i}", "u1", "i1", t0) for i in range(5)])
    stop, appended = threading.Event(), []

    def stream() -> None:  # another writer's appends (a delta-rs append can lose to the delete too: retried)
        while not stop.is_set() and len(appended) < 200:
            event = _event(f"s{len(appended)}", "other", "i1", t0)
            with_commit_retries(lake.delta_rs, "append", lambda e=event: _bronze(lake, e))
            appended.append(1)

    writer = threading.Thread(target=stream)
    writer.start()
    try:
        deleted = DeltaErasureStore(lake).delete_user_rows("u1")
    finally:
        stop.set()
        writer.join()
    assert deleted["events_bronze"] == 5
    users = [r["user_id"] for r in read(lake, EVENTS_BRONZE)]
    assert "u1" not in users and users.count("other") == len(appended)


def test_erasures_are_appended_with_their_time(lake):
    store = DeltaErasureStore(lake)
    first = datetime(2026, 11, 1, 12, tzinfo=UTC)
    store.record_erasure("u1", first)
    store.record_erasure("u1", datetime(2026, 11, 2, 12))  # a naive time is UTC
    assert store.erasures() == [{"user_id": "u1", "erased_at": first},
                                {"user_id": "u1", "erased_at": first + timedelta(days=1)}]
