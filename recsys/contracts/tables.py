"""The Delta table contract: every table's name, columns (Spark DDL) and partitioning.

Schemas are DDL strings so that readers without a JVM (the API reads with delta-rs) can import
this module cheaply; Spark code turns them into StructTypes. See docs/contracts.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str
    ddl: str
    partition_by: tuple[str, ...] = ()
    doc: str = ""

    @property
    def columns(self) -> list[str]:
        return [name for name, _ in self.fields]

    @property
    def fields(self) -> list[tuple[str, str]]:
        """(column, DDL type) pairs, e.g. ("context", "MAP<STRING, STRING>"): for non-Spark schemas."""
        pairs = (part.strip().partition(" ") for part in split_top_level(self.ddl))
        return [(name, ddl_type.strip()) for name, _, ddl_type in pairs]


def split_top_level(ddl: str) -> list[str]:
    """Split a DDL column list on commas that are not inside <...>."""
    parts, depth, current = [], 0, []
    for char in ddl:
        depth += char == "<"
        depth -= char == ">"
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (s.strip() for s in parts) if p]


EVENT_PAYLOAD_DDL = (
    "event_id STRING, user_id STRING, item_id STRING, event_type STRING, ts TIMESTAMP, "
    "session_id STRING, quantity INT, price DOUBLE, context MAP<STRING, STRING>"
)

EVENTS_BRONZE = TableSpec(
    name="events_bronze",
    ddl=EVENT_PAYLOAD_DDL + ", kafka_partition INT, kafka_offset BIGINT, ingested_at TIMESTAMP, "
    "event_date DATE, kafka_topic STRING, kafka_timestamp TIMESTAMP",
    partition_by=("event_date",),
    doc="Every valid event exactly once per Kafka record (topic, partition, offset), as received (append-only; "
    "batch layer input). kafka_timestamp is when the event entered the system: what erasures compare.",
)

EVENTS_QUARANTINE = TableSpec(
    name="events_quarantine",
    ddl="reason STRING, detail STRING, raw BINARY, kafka_topic STRING, kafka_partition INT, "
    "kafka_offset BIGINT, kafka_timestamp TIMESTAMP, quarantined_at TIMESTAMP, quarantine_date DATE",
    partition_by=("quarantine_date",),
    doc="Records the stream could not accept, with the reason and the raw bytes.",
)

# Spark schema of a served-recommendation record on the wire (recsys.contracts.served.ServedRecommendation).
SERVED_PAYLOAD_DDL = (
    "rec_id STRING, user_id STRING, experiment STRING, variant STRING, model_version STRING, "
    "item_ids ARRAY<STRING>, ts TIMESTAMP"
)

RECOMMENDATIONS_SERVED = TableSpec(
    name="recommendations_served",
    ddl=SERVED_PAYLOAD_DDL + ", kafka_partition INT, kafka_offset BIGINT, ingested_at TIMESTAMP, served_date DATE",
    partition_by=("served_date",),
    doc="Every recommendation list served, with its experiment variant and model version (append-only; "
    "experiment reports join it with the events attributed to it).",
)

ITEMS = TableSpec(
    name="items",
    ddl="item_id STRING, title STRING, category STRING, brand STRING, price DOUBLE, available BOOLEAN, stock INT, "
        "blocked BOOLEAN, updated_at TIMESTAMP",
    doc="Item catalogue (latest attributes per item); available NULL = available, blocked = never served.",
)

USERS = TableSpec(
    name="users",
    ddl="user_id STRING, age_band STRING, gender STRING, location STRING, updated_at TIMESTAMP",
    doc="User attributes (latest per user).",
)

USER_FACTORS = TableSpec(
    name="user_factors",
    ddl="model_version STRING, user_id STRING, factors ARRAY<FLOAT>",
    partition_by=("model_version",),
    doc="ALS user factors, one partition per model version.",
)

ITEM_FACTORS = TableSpec(
    name="item_factors",
    ddl="model_version STRING, item_id STRING, factors ARRAY<FLOAT>, popularity DOUBLE",
    partition_by=("model_version",),
    doc="ALS item factors and training popularity, one partition per model version.",
)

SIMILAR_ITEMS = TableSpec(
    name="similar_items",
    ddl="model_version STRING, item_id STRING, similar_id STRING, score DOUBLE, rank INT",
    partition_by=("model_version",),
    doc="Each item's most similar items (cosine of who interacted with them), best first (rank 1).",
)

POPULAR_ITEMS = TableSpec(
    name="popular_items",
    ddl="model_version STRING, segment STRING, item_id STRING, score DOUBLE, rank INT",
    partition_by=("model_version",),
    doc="Most popular items overall (segment '*') and per user segment ('age_band=25-34,gender=f'), "
    "for cold-start users; score = the segment's users who interacted with the item (ties: decayed strength).",
)

ITEM_CONTENT = TableSpec(
    name="item_content",
    ddl="model_version STRING, item_id STRING, indices ARRAY<INT>, weights ARRAY<FLOAT>",
    partition_by=("model_version",),
    doc="L2-normalised sparse content profile per catalogue item (hashed TF-IDF of attributes and words).",
)

MODEL_REGISTRY = TableSpec(
    name="model_registry",
    ddl="model_version STRING, created_at TIMESTAMP, run_date STRING, status STRING, "
    "published_at TIMESTAMP, params STRING, metrics STRING, data_from TIMESTAMP, data_to TIMESTAMP, "
    "n_users BIGINT, n_items BIGINT, n_interactions BIGINT, tuning STRING, gate_reason STRING, "
    "report_uri STRING",
    doc="One row per model version; see recsys.contracts.model_version for status semantics. params, "
    "metrics (per model: ALS and baselines) and tuning (the trials) are JSON.",
)

USER_ERASURES = TableSpec(
    name="user_erasures",
    ddl="user_id STRING, erased_at TIMESTAMP",
    doc="One row per erasure of a user (DELETE /v1/users/<id>), append-only: the stream and the batch layer drop "
    "that user's events ingested (kafka_timestamp, else ingested_at) at or before the latest erased_at, which "
    "catches events still in Kafka when they were erased, whatever ts the client gave them.",
)

USER_HISTORY = TableSpec(
    name="user_history",
    ddl="model_version STRING, user_id STRING, item_id STRING, last_ts TIMESTAMP, owned_ts TIMESTAMP",
    partition_by=("model_version",),
    doc="Each user's most recent items at training time (outputs.history_items, newest first by last_ts) and "
    "their most recently owned ones however old (outputs.owned_items); "
    "owned_ts = the last event of a serving.repurchase.owned_events type (null: never owned). Serving reads it "
    "for the item-kNN and recent-items signals and the repurchase policy.",
)

USER_CANDIDATES = TableSpec(
    name="user_candidates",
    ddl="model_version STRING, user_id STRING, items ARRAY<STRING>",
    partition_by=("model_version",),
    doc="Each user's serving.retrieval.user_top_n best items by ALS score, best first: the batch candidate source "
    "of two-stage serving (recsys/serving/candidates.py, user_top_n).",
)

RUN_INTERACTIONS = TableSpec(
    name="run_interactions",
    ddl="run_date STRING, user_id STRING, item_id STRING, strength DOUBLE, first_ts TIMESTAMP, last_ts TIMESTAMP, "
    "owned_ts TIMESTAMP",
    partition_by=("run_date",),
    doc="The interactions of one run date (every event up to it, erased users left out), built once by the train "
    "stage and read by the evaluate stage of the same run date, so they are built once per run and both stages "
    "see the same data. Each train overwrites the whole table: it holds one run date.",
)

VERSIONED_TABLES: tuple[TableSpec, ...] = (USER_FACTORS, ITEM_FACTORS, SIMILAR_ITEMS, POPULAR_ITEMS, ITEM_CONTENT,
                                           USER_HISTORY, USER_CANDIDATES)

ALL_TABLES: tuple[TableSpec, ...] = (
    EVENTS_BRONZE, EVENTS_QUARANTINE, RECOMMENDATIONS_SERVED, ITEMS, USERS, *VERSIONED_TABLES, MODEL_REGISTRY,
    USER_ERASURES, RUN_INTERACTIONS,
)

# Tables holding a user's data by user_id: forgetting a user deletes their rows from each (derived, so a new
# table with a user_id column is covered). The erasure record itself is kept: it is what keeps them forgotten.
USER_DATA_TABLES: tuple[TableSpec, ...] = tuple(
    spec for spec in ALL_TABLES if "user_id" in spec.columns and spec is not USER_ERASURES
)
