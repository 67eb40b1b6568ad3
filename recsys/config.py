"""Typed configuration: conf/base.yaml, then conf/<env>.yaml, then RECSYS__SECTION__KEY variables.

Every layer is checked against the base file's keys so a typo fails loudly with the file and
key named, instead of being silently ignored.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, field_validator, model_validator

from recsys.contracts.events import ID_PATTERN, MAX_ID_LENGTH
from recsys.contracts.model_version import VERSION_PATTERN
from recsys.contracts.sequence_model import SEQUENCE_MODEL_DIR
from recsys.contracts.served import OFF

# RECSYS_HOME is set by recsys.spark.submit: under spark-submit this module may be imported from the
# --py-files zip, whose location says nothing about where conf/ and the data live.
PROJECT_ROOT = Path(os.environ.get("RECSYS_HOME") or Path(__file__).resolve().parents[1])
ENV_PREFIX = "RECSYS__"


class ConfigError(ValueError):
    """A configuration file or variable is unknown, mistyped or invalid."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkConfig(_Section):
    master: str
    app_name: str
    jars_dir: str
    packages: list[str]
    python: str
    driver_memory: str
    shuffle_partitions: int = Field(gt=0)
    adaptive: bool  # Adaptive Query Execution: shuffles coalesced to the data's size, skewed joins split
    advisory_partition_mb: int = Field(gt=0)  # the size AQE aims a shuffle partition at
    blas_threads: int = Field(gt=0)
    driver_java_options: str  # JVM options of the driver (before extra_conf's and the class archive's)
    page_size: str  # spark.buffer.pageSize (Tungsten's memory page, e.g. 4m)
    malloc_arenas: int = Field(ge=0)  # glibc malloc arenas of driver and executors (MALLOC_ARENA_MAX; 0: glibc's)
    extra_conf: dict[str, str]
    concurrent_actions: int = Field(gt=0)  # a stage's small Spark actions run from this many driver threads
    class_archive: str  # AppCDS archive of the driver JVM (recsys.spark.class_archive); "" = off


class StorageConfig(_Section):
    delta_root: str
    checkpoint_root: str
    reports_root: str


class KafkaConfig(_Section):
    bootstrap_servers: str
    events_topic: str
    topic_partitions: int = Field(gt=0)
    replication_factor: int = Field(gt=0)
    min_insync_replicas: int = Field(gt=0)
    produce_timeout_s: float = Field(gt=0)
    queue_max_messages: int = Field(gt=0)
    breaker_failures: int = Field(gt=0)
    breaker_open_s: float = Field(gt=0)
    security: dict[str, str]


class RedisConfig(_Section):
    url: str
    key_prefix: str
    recent_items_max: int = Field(gt=0)
    user_ttl_s: int = Field(gt=0)
    socket_timeout_s: float = Field(gt=0)
    breaker_failures: int = Field(gt=0)
    breaker_open_s: float = Field(gt=0)
    writer_timeout_s: float = Field(gt=0)
    driver_timeout_s: float = Field(gt=0)
    pending_max: int = Field(ge=0)  # acknowledged events kept per user until the stream applies them (0 = off)
    pending_ttl_s: int = Field(gt=0)


class EventsConfig(_Section):
    weights: dict[str, float]
    max_body_bytes: int = Field(gt=0)
    max_batch: int = Field(gt=0)
    max_event_bytes: int = Field(gt=0, le=1_000_000)  # below Kafka's default message.max.bytes (1 MB)
    min_ts: datetime
    max_future_skew_s: int = Field(ge=0)
    half_life_days: float = Field(gt=0)
    quantity: Literal["ignore", "log", "linear"]  # how an event's quantity scales its weight in the batch


class AlsConfig(_Section):
    rank: int = Field(gt=0)
    max_iter: int = Field(gt=0)
    reg_param: float = Field(ge=0)
    alpha: float = Field(gt=0)
    seed: int
    checkpoint_interval: int = Field(gt=0)
    blocks: int = Field(default=0, ge=0)  # ALS user and item blocks (0 = one per core); older rows lack it
    solver: Literal["cg", "mllib"] = "mllib"  # cg: recsys.batch.als_cg; older rows (all MLlib-trained) lack it
    cg_steps: int = Field(default=3, gt=0)  # conjugate-gradient steps per row and half-sweep (solver cg)
    driver_interactions: int = Field(default=0, ge=0)  # solver cg: up to this many interactions on the driver


class EvaluationConfig(_Section):
    k: int = Field(gt=0)
    test_fraction: float = Field(gt=0, lt=1)
    split: Literal["random", "time"]
    seed: int
    baselines: list[Literal["popularity", "item_knn", "content"]]
    knn_neighbours: int = Field(gt=0)
    max_users: int = Field(ge=0)  # held-out users every model is scored on (a seeded sample; 0 = all)
    driver_top_k_cells: int = Field(ge=0)  # ALS top-k of the sample on the driver up to this many scores (0 = never)
    signals: list[str] = Field(default_factory=list)  # merge signals also scored alone, through the served ranking
    workers: int = Field(ge=0)  # forked processes ranking held-out shoppers offline (0 = one per core)
    min_users_per_worker: int = Field(gt=0)  # fewer shoppers than this per process: rank them in one process

    @field_validator("signals")
    @classmethod
    def _known_signals(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(MergeWeights.model_fields))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known: {sorted(MergeWeights.model_fields)}")
        return value


class ValidationConfig(_Section):
    """The time-aware validation split that tuning and the gate score on (never the test split)."""

    split: Literal["cut", "random"]  # one time cut (shops) or per-user random (ratings without a time order)
    last_days: float = Field(gt=0)  # the cut: hold out what shoppers take up in the last N days
    max_fraction: float = Field(gt=0, lt=1)  # but at most this share of the events (the cut moves later)
    max_users: int = Field(ge=0)  # score tuning on at most this many held-out shoppers (0 = all)


class TuningConfig(_Section):
    enabled: bool
    budget_s: float = Field(gt=0)
    max_trials: int = Field(gt=0)
    seed: int
    weights: list[str] = Field(default_factory=list)  # merge weights the ascent moves (offline-visible signals)
    weight_rounds: int = Field(ge=0)  # coordinate-ascent passes over the merge weights per ALS trial (0 = keep)
    weight_steps: list[float] = Field(min_length=1)  # values each merge weight is tried at
    popularity_half_life_days: list[float] = Field(min_length=1)  # popularity half-lives tried with the weights
    interaction_half_life_days: list[float] = Field(default_factory=list)  # events.half_life_days tried on the best ALS
    max_per_category: list[NonNegativeInt] = Field(default_factory=list)  # serving.max_per_category values tried
    rank: list[int] = Field(min_length=1)
    max_iter: list[int] = Field(min_length=1)
    reg_param: tuple[float, float]
    alpha: tuple[float, float]


    @field_validator("weights")
    @classmethod
    def _known_weights(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(MergeWeights.model_fields))
        if unknown:
            raise ValueError(f"unknown merge weight(s) {unknown}; known: {sorted(MergeWeights.model_fields)}")
        return value


class ContentConfig(_Section):
    num_features: int = Field(gt=0)
    price_bands: int = Field(gt=1)
    min_token_length: int = Field(gt=0)


class OutputsConfig(_Section):
    similar_items: int = Field(gt=0)
    popular_items: int = Field(gt=0)
    history_items: int = Field(ge=0)
    owned_items: int = Field(ge=0)
    popularity_half_life_days: float = Field(gt=0)
    segment_attributes: list[str]
    min_segment_users: int = Field(gt=0)


class QualityConfig(_Section):
    min_events: int = Field(ge=0)
    min_users: int = Field(ge=0)
    min_items: int = Field(ge=0)
    max_quarantine_share: float = Field(ge=0, le=1)


class MaintenanceConfig(_Section):
    vacuum_retention_hours: int = Field(ge=0)
    vacuum_mode: Literal["lite", "full"]
    optimize: bool


class GateConfig(_Section):
    min_ndcg: float = Field(ge=0, le=1)
    max_regression: float = Field(ge=0)
    baseline_margin: float = Field(ge=-1)  # served NDCG must beat the best single baseline by this share (-1: off)


class SequenceConfig(_Section):
    """The sequence-aware next-item model (recsys/sequence/): its sessions, training budget and gate."""

    enabled: bool
    event_types: list[str] = Field(min_length=1)  # events whose items make up a session
    min_items: int = Field(ge=2)  # shorter sessions teach and test nothing
    max_len: int = Field(gt=0)  # newest items of a session the model reads
    embedding_dim: int = Field(gt=0)
    hidden_dim: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    epochs: int = Field(gt=0)
    budget_s: float = Field(gt=0)
    seed: int
    validation_fraction: float = Field(gt=0, lt=0.5)
    test_fraction: float = Field(gt=0, lt=0.5)
    max_eval_sessions: int = Field(ge=0)
    weight_steps: list[float] = Field(min_length=1)
    min_gain: float = Field(ge=0)
    cache_dir: str


class BatchConfig(_Section):
    claim_ttl_s: int = Field(gt=0)
    claim_attempts: int = Field(gt=0)
    clean_checkpoints: bool


class StreamConfig(_Section):
    realtime_trigger_s: float = Field(ge=0)
    bronze_trigger_s: float = Field(ge=0)
    starting_offsets: str
    max_offsets_per_trigger: int = Field(gt=0)
    redis_chunk: int = Field(gt=0)
    redis_retry_s: float = Field(ge=0)
    marker_ttl_s: int = Field(gt=0)
    dedupe_ids: int = Field(ge=0)
    bronze_fail_on_data_loss: bool
    query_restart_s: float = Field(ge=0)
    model_refresh_s: float = Field(ge=0)
    catalogue_refresh_s: float = Field(ge=0)
    interest_half_life_s: float = Field(gt=0)
    max_interests: int = Field(gt=0)
    session_gap_s: float = Field(gt=0)
    max_sessions: int = Field(gt=0)
    purchased_max: int = Field(gt=0)
    trending_bucket_s: int = Field(gt=0)
    trending_half_life_s: float = Field(gt=0)
    trending_buckets: int = Field(gt=0)
    trending_refresh_s: float = Field(ge=0)
    trending_max: int = Field(gt=0)
    co_view_window_s: float = Field(gt=0)
    co_view_recent: int = Field(ge=0)
    co_views_max: int = Field(gt=0)
    co_view_ttl_s: int = Field(gt=0)
    live_items_ttl_s: int = Field(gt=0)


class MergeWeights(_Section):
    """Weight of each signal in a recommendation's score (score = sum of weight x signal); A/B variants override it."""

    factors: float = Field(ge=0)
    recent: float = Field(ge=0)
    interests: float = Field(ge=0)
    co_views: float = Field(ge=0)
    trending: float = Field(ge=0)
    new_items: float = Field(ge=0)
    popularity: float = Field(ge=0)
    item_knn: float = Field(default=0.0, ge=0)  # batch item-item neighbours of the shopper's history
    sequence: float = Field(default=0.0, ge=0)  # the GRU next-item model on the session (recsys/sequence/)


class RepurchaseConfig(_Section):
    """Whether a shopper is shown what they already bought: a shop for discovery excludes it."""

    policy: Literal["exclude", "window", "allow"]  # exclude always, exclude within window_days, or allow
    window_days: float = Field(ge=0)  # "window": purchases older than this may be recommended again
    owned_events: list[str] = Field(min_length=1)  # event types that make an item the shopper's own
    buy_again_k: int = Field(ge=0)  # length of the labelled "buy again" list (0 = none)


class SimilarWeights(_Section):
    """How "similar items" blends the batch neighbours with the live co-views."""

    batch: float = Field(ge=0)
    co_views: float = Field(ge=0)


# The readiness role GET /readyz reports (GET /readyz/<role> for the others).
DEFAULT_READINESS_ROLE = "serving"


class AnnConfig(_Section):
    """The approximate-nearest-neighbour index over a version's item factors (usearch HNSW, inner product)."""

    exact_below: int = Field(ge=0)  # catalogues with fewer ALS items are searched exactly (one matrix product)
    connectivity: int = Field(gt=0)  # HNSW edges per node: recall and memory against build time
    expansion_add: int = Field(gt=0)  # candidates looked at while inserting: build quality against build time
    expansion_search: int = Field(gt=0)  # candidates looked at per query: recall against query time
    dtype: Literal["f32", "f16"]  # the scalar type the index stores the vectors in: f16 halves it, searches faster
    build_threads: int = Field(ge=0)  # threads building the index once per version (0: all cores)


class RetrievalConfig(_Section):
    """Two-stage serving: a bounded candidate set from pluggable sources, then the full merge on it."""

    mode: Literal["two_stage", "full"]  # full: every item is scored (the quality reference)
    sources: list[str] = Field(min_length=1)  # candidate sources by registered name (recsys.serving.candidates)
    user_top_n: int = Field(ge=0)  # per-user top-N the batch layer writes per version (USER_CANDIDATES)
    ann_k: int = Field(ge=0)  # items the index returns for the shopper's taste vector
    recent_k: int = Field(ge=0)  # items the index returns for the mean of the recent items
    per_attribute: int = Field(ge=0)  # most popular items kept per category and per brand, per version
    interest_attributes: int = Field(ge=0)  # strongest live interests whose top items are candidates
    popular: int = Field(ge=0)  # most popular items, always candidates (cold start, fallback)
    filter_scan: int = Field(ge=0)  # a filtered request whose filters pass at most this many items ranks them all
    extra_categories: int = Field(ge=0)  # categories beyond those a capped page needs whose items are candidates
    per_category_cap: int = Field(ge=0)  # popular items taken from each of those categories
    cache_dir: str  # memory-mapped arrays and index per version, shared by the workers of one machine
    live_rows: int = Field(ge=0)  # spare factor rows in those files: live item vectors fill them, no private copy
    ann: AnnConfig


class ServingConfig(_Section):
    host: str
    port: int = Field(gt=0, lt=65536)
    workers: int = Field(gt=0)
    threads: int = Field(gt=0)
    access_log: bool
    ingest_slots: int = Field(gt=0)
    ingest_queue: int = Field(ge=0)
    ingest_wait_s: float = Field(ge=0)
    default_k: int = Field(gt=0)
    max_k: int = Field(gt=0)
    max_offset: int = Field(ge=0)
    max_exclude: int = Field(gt=0)
    max_seen_items: int = Field(gt=0)
    recent_window: int = Field(gt=0)
    history_window: int = Field(ge=0)
    history_half_life_days: float = Field(gt=0)
    repurchase: RepurchaseConfig
    reason_min_similarity: float = Field(ge=-1, le=1)
    reason_min_share: float = Field(ge=0, le=1)
    session_reason_items: int = Field(gt=0)
    merge: MergeWeights
    similar: SimilarWeights
    max_per_category: int = Field(ge=0)
    co_view_sources: int = Field(ge=0)
    co_view_k: int = Field(gt=0)
    trending_pool: int = Field(gt=0)
    trending_cache_s: float = Field(ge=0)
    interest_saturation: float = Field(gt=0)
    anonymous_event_strength: float = Field(gt=0)
    model_refresh_s: float = Field(ge=0)
    swap_in_background: bool  # a new version is read on a thread while the old one keeps serving
    gc_freeze: bool  # after a swap the worker's objects leave the cyclic collector's full passes
    catalogue_poll_s: float = Field(ge=0)
    max_id_length: int = Field(gt=0)
    metrics_dir: str
    blas_threads: int = Field(gt=0)
    malloc_arenas: int = Field(ge=0)  # glibc malloc arenas per worker (M_ARENA_MAX; 0: glibc's default)
    readiness: dict[str, list[Literal["model", "redis", "kafka"]]]
    retrieval: RetrievalConfig

    @model_validator(mode="after")
    def _reads_keep_threads(self) -> ServingConfig:
        if DEFAULT_READINESS_ROLE not in self.readiness:
            raise ValueError(f"readiness needs a '{DEFAULT_READINESS_ROLE}' role (GET /readyz)")
        if self.ingest_slots + self.ingest_queue >= self.threads:
            raise ValueError(f"ingest_slots + ingest_queue ({self.ingest_slots} + {self.ingest_queue}) must be below "
                             f"threads ({self.threads}): reads need threads of their own while the broker is slow")
        return self


# Shares are written by people (0.5, 0.3, 0.2); allow for float rounding when checking that they add up to 1.
SHARE_TOLERANCE = 1e-6


class Variant(_Section):
    """One arm of an A/B experiment: its traffic share and what it changes (nothing = the control)."""

    name: str = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    share: float = Field(gt=0, le=1)
    merge: dict[str, float] = Field(default_factory=dict)  # overrides of serving.merge, by weight name
    model_version: str | None = Field(default=None, pattern=VERSION_PATTERN)  # pinned version; None = current

    @field_validator("merge")
    @classmethod
    def _known_weights(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(MergeWeights.model_fields))
        if unknown:
            raise ValueError(f"unknown merge weight(s) {unknown}; known: {sorted(MergeWeights.model_fields)}")
        negative = sorted(k for k, v in value.items() if v < 0)
        if negative:
            raise ValueError(f"merge weight(s) {negative} must be >= 0")
        return value


class ServedRecorderConfig(_Section):
    """The API's non-blocking producer of served-recommendation records (recsys.ingest.served_recorder)."""

    queue_max_messages: int = Field(gt=0)
    linger_ms: int = Field(ge=0)
    delivery_timeout_s: float = Field(gt=0)
    shutdown_flush_s: float = Field(ge=0)


class ExperimentsConfig(_Section):
    """A/B variants of serving (recsys.serving.experiments), and how served lists are recorded and attributed."""

    enabled: bool
    name: str = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    variants: list[Variant] = Field(min_length=1)
    attribution_window_s: int = Field(gt=0)
    served_items_max: int = Field(gt=0)
    served_users_max: int = Field(gt=0)
    memory_queue_max: int = Field(gt=0)
    memory_flush_wait_s: float = Field(ge=0)
    recorder: ServedRecorderConfig
    log_interval_s: float = Field(ge=0)

    @model_validator(mode="after")
    def _valid_variants(self) -> ExperimentsConfig:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique: {names}")
        if OFF in (*names, self.name):
            raise ValueError(f"'{OFF}' is reserved (recorded when experiments are off)")
        total = sum(v.share for v in self.variants)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"variant shares must sum to 1, not {total:g}")
        return self


class AuthScopes(_Section):
    """Per scope, the environment variable listing its API keys (recsys.services.auth.Scope)."""

    read: str
    ingest: str
    catalogue: str
    user_data: str
    admin: str


class AuthConfig(_Section):
    open: bool
    scopes: AuthScopes


class PrivacyConfig(_Section):
    pseudonymise: bool
    pseudonym_chars: int = Field(ge=16, le=64)


class DeltaRsConfig(_Section):
    commit_retries: int = Field(ge=0)
    commit_backoff_s: float = Field(ge=0)
    max_upsert_rows: int = Field(gt=0)
    max_history_events: int = Field(gt=0)


class DemoConfig(_Section):
    """The demo page and the evaluation report pages the API serves (api/blueprints/demo.py, reports.py)."""

    enabled: bool
    shoppers: int = Field(gt=0)
    k: int = Field(gt=0)
    poll_interval_ms: int = Field(gt=0)
    poll_duration_s: float = Field(gt=0)
    status_refresh_s: float = Field(gt=0)
    report_versions: int = Field(gt=0)


class LoaderConfig(_Section):
    """Reading a shop's own files (spark_jobs/load_data.py --source files)."""

    chunk_rows: int = Field(gt=0)


class TrackingConfig(_Section):
    """MLflow tracking of tuning trials, evaluations, gate decisions and publications (recsys/tracking/)."""

    enabled: bool
    uri: str
    artifact_root: str
    experiment: str = Field(min_length=1)


class ServicesConfig(_Section):
    state_dir: str
    redis_port: int
    redis_maxmemory: str = Field(pattern=r"^[0-9]+(b|kb|mb|gb)?$")
    redis_maxmemory_policy: Literal["volatile-lru", "volatile-lfu", "volatile-ttl", "allkeys-lru", "allkeys-lfu",
                                    "noeviction"]
    kafka_port: int
    kafka_controller_port: int
    airflow_port: int
    spark_master_port: int
    spark_master_ui_port: int
    spark_worker_ui_port: int
    spark_worker_cores: int = Field(gt=0)
    spark_worker_memory: str


class AirflowConfig(_Section):
    home: str
    spark_conn_id: str
    schedule: str
    retries: int = Field(ge=0)


class Settings(_Section):
    env: str
    spark: SparkConfig
    storage: StorageConfig
    kafka: KafkaConfig
    redis: RedisConfig
    events: EventsConfig
    als: AlsConfig
    evaluation: EvaluationConfig
    validation: ValidationConfig
    tuning: TuningConfig
    content: ContentConfig
    outputs: OutputsConfig
    quality: QualityConfig
    gate: GateConfig
    sequence: SequenceConfig
    maintenance: MaintenanceConfig
    batch: BatchConfig
    stream: StreamConfig
    serving: ServingConfig
    experiments: ExperimentsConfig
    auth: AuthConfig
    privacy: PrivacyConfig
    delta_rs: DeltaRsConfig
    demo: DemoConfig
    loader: LoaderConfig
    tracking: TrackingConfig
    services: ServicesConfig
    airflow: AirflowConfig

    def path(self, value: str) -> str:
        """Resolve a configured path: URIs stay as they are, relative paths hang off the project root."""
        if not value or "://" in value or os.path.isabs(value):
            return value
        return str(PROJECT_ROOT / value)

    def table_path(self, table: str) -> str:
        return f"{self.path(self.storage.delta_root).rstrip('/')}/{table}"

    def report_path(self, version: str) -> str:
        """Where the HTML evaluation report of a model version is written (beside the Delta tables)."""
        return f"{self.path(self.storage.reports_root).rstrip('/')}/{version}.html"

    def sequence_path(self, version: str) -> str:
        """Where a model version's sequence-model weights are written (beside its Delta tables)."""
        return self.table_path(f"{SEQUENCE_MODEL_DIR}/{version}")

    def checkpoint_path(self, name: str) -> str:
        return f"{self.path(self.storage.checkpoint_root).rstrip('/')}/{name}"


def _check_keys(layer: dict[str, Any], base: dict[str, Any], source: str, prefix: str = "") -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{source}: unknown key '{dotted}'")
        if isinstance(base[key], dict) and base[key] and not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{dotted}' must be a mapping")
        # Free-form mappings (empty in base, e.g. spark.extra_conf) accept any sub-key.
        if isinstance(value, dict) and isinstance(base[key], dict) and base[key]:
            _check_keys(value, base[key], source, f"{dotted}.")


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def _env_layer(environ: dict[str, str], base: dict[str, Any]) -> dict[str, Any]:
    """RECSYS__A__B=value becomes {a: {b: value}}; values are parsed as YAML scalars or lists."""
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        node = layer
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment variable {name}: cannot parse value: {exc}") from exc
    _check_keys(layer, base, "environment")
    return layer


def load_settings(env: str | None = None, conf_dir: Path | None = None,
                  environ: dict[str, str] | None = None) -> Settings:
    """Load and validate the layered configuration for one environment."""
    environ = dict(os.environ if environ is None else environ)
    conf_dir = conf_dir or Path(environ.get("RECSYS_CONF_DIR", PROJECT_ROOT / "conf"))
    env = env or environ.get("RECSYS_ENV", "local")
    base_file = conf_dir / "base.yaml"
    base = _read_yaml(base_file)
    merged = dict(base)
    env_file = conf_dir / f"{env}.yaml"
    if env_file.exists():
        layer = _read_yaml(env_file)
        _check_keys(layer, base, str(env_file))
        merged = _merge(merged, layer)
    elif env != "local":
        raise ConfigError(f"environment '{env}' has no file {env_file}")
    merged = _merge(merged, _env_layer(environ, base))
    merged["env"] = env
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in err['loc'])}': {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration ({base_file}, {env_file}, environment): {problems}") from exc


@lru_cache(maxsize=4)
def get_settings(env: str | None = None) -> Settings:
    """Process-wide settings, cached; tests call load_settings directly."""
    return load_settings(env)


def _flatten(prefix: str, value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, sub in value.items():
            name = re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}_{key}" if prefix else key).upper()
            out.update(_flatten(name, sub))
        return out
    if isinstance(value, list):
        return {prefix: ",".join(str(v) for v in value)}
    return {prefix: str(value)}


def main(argv: list[str] | None = None) -> None:
    """`python -m recsys.config [--shell | --get a.b]`: lets shell scripts read the same settings."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--env", default=None)
    parser.add_argument("--get", help="dotted key to print, e.g. kafka.bootstrap_servers")
    parser.add_argument("--shell", action="store_true", help="print CFG_SECTION_KEY=value lines")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.env)
    except ConfigError as exc:
        raise SystemExit(f"config error: {exc}") from None
    data = settings.model_dump(mode="json")
    if args.get:
        node: Any = data
        for part in args.get.split("."):
            node = node[part]
        print(node)
    elif args.shell:
        for key, value in _flatten("CFG", data).items():
            print(f"{key}={shlex.quote(value)}")
    else:
        print(yaml.safe_dump(data, sort_keys=False))


if __name__ == "__main__":
    main()
