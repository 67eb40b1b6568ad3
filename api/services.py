"""The long-lived objects a worker process shares across requests.

The server forks its workers from one process (api/server.py), and a confluent_kafka Producer (librdkafka's threads)
does not survive a fork. The served-record producer and the attribution memory are therefore `PerProcess`:
built on first use in the process that uses them, and built again if that process turns out to be a fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from flask import current_app

from api.request_metrics import count_attribution_error, count_served_record
from recsys.config import Settings
from recsys.ingest.gate import IngestGate
from recsys.ingest.producer import EventSink, KafkaEventSink
from recsys.ingest.served_recorder import KafkaServedRecorder, ServedRecorder
from recsys.redis_client import redis_client
from recsys.services.attribution import RedisServedMemory
from recsys.services.catalogue import CatalogueService
from recsys.services.privacy import Pseudonymizer
from recsys.services.status import ServiceStatus, service_status
from recsys.services.user_data import UserDataService
from recsys.services.write_behind import WriteBehindMemory
from recsys.serving.live_model import LiveModel
from recsys.serving.long_lived import freeze_long_lived
from recsys.serving.model_cache import ModelCache, PinnedModel
from recsys.serving.pending_overlay import OverlayRules
from recsys.serving.recommender import Recommender
from recsys.serving.results import RecommendationQuery
from recsys.serving.served_lists import ServedList, serve_list
from recsys.stores.attribute_store import AttributeStore, DeltaAttributeStore
from recsys.stores.live_catalogue import LiveCatalogueStore
from recsys.stores.model_store import FactorModel
from recsys.stores.online_store import OnlineStore, RedisOnlineStore
from recsys.stores.pending_events import RedisPendingEvents
from recsys.stores.redis_breaker import guard, redis_breaker
from recsys.stores.shared_model_store import SharedModelStore

SERVICES_EXTENSION = "recsys"
T = TypeVar("T")


class PerProcess(Generic[T]):
    """An object built on first use in each process: never one inherited across a fork."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._value = self._factory()
                    self._pid = pid
        return self._value  # type: ignore[return-value]  # set above for this process

    def built(self) -> T | None:
        """This process's object, or None when it has not been built here (nothing to close)."""
        return self._value if self._pid == os.getpid() else None


@dataclass
class Services:
    settings: Settings
    models: ModelCache
    online: OnlineStore
    sink: EventSink
    recommender: Recommender
    recorder: PerProcess[ServedRecorder]
    memory: PerProcess[WriteBehindMemory]
    attributes: AttributeStore
    user_data: UserDataService
    catalogue: CatalogueService
    ingest_gate: IngestGate = field(default_factory=lambda: IngestGate(1, 0, 0.0))
    pseudonyms: Pseudonymizer = field(default_factory=Pseudonymizer.disabled)  # user id -> stored id
    pinned: dict[str, Recommender] = field(default_factory=dict)  # version pinned by a variant -> its recommender
    registry: Callable[[], list[dict]] = list  # the model registry's rows (DeltaModelStore.registry)
    pending: RedisPendingEvents | None = None  # read your own writes: acknowledged events recorded for serving
    live: Callable[[], FactorModel | None] = lambda: None  # the current model with the live catalogue laid over it

    def recommender_for(self, version: str | None) -> Recommender:
        """The recommender of a variant's pinned version; the current model's when None (or not pinned)."""
        return self.recommender if version is None else self.pinned.get(version, self.recommender)

    def serve(self, user_id: str, query: RecommendationQuery) -> ServedList:
        """`user_id`'s list (the id as stored) under their A/B variant, recorded and remembered for attribution."""
        return serve_list(user_id, query, self.settings.experiments, self.settings.serving.merge,
                          self.recommender_for, self.recorder.get(), self.memory.get())

    def known_shoppers(self, n: int) -> list[str]:
        """Up to `n` user ids the served model knows, as a caller would send them: none when ids are
        pseudonymised (the model only holds pseudonyms, which would be hashed again)."""
        return [] if self.pseudonyms.enabled else self.recommender.known_users(n)

    def status(self) -> ServiceStatus:
        """The served model version and the speed layer's progress (GET /v1/status)."""
        model = self.live()
        return service_status(None if model is None else model.version, self.online)

    def close(self) -> None:
        """At worker exit: send this process's queued served records and lists to remember, each within
        experiments.recorder.shutdown_flush_s."""
        for queued in (self.recorder.built(), self.memory.built()):
            if queued is not None:
                queued.close(self.settings.experiments.recorder.shutdown_flush_s)


def build_services(settings: Settings) -> Services:
    pseudonyms = Pseudonymizer.from_config(settings.privacy, os.environ)  # fails early when the key is missing
    store = SharedModelStore(settings)  # one copy of each version per machine (memory-mapped), read in a child
    models = ModelCache(store, settings.serving.model_refresh_s, background=settings.serving.swap_in_background,
                        on_swap=freeze_long_lived if settings.serving.gc_freeze else None)
    if settings.serving.swap_in_background:
        models.warm()  # this worker reads the current version now, not on its first request
    client = guard(redis_client(settings.redis, decode=True), redis_breaker(settings.redis))
    pending = RedisPendingEvents(settings.redis, settings.kafka.events_topic, settings.kafka.topic_partitions,
                                 client)
    online = RedisOnlineStore(settings.redis, client, pending=pending,
                              trending_cache_s=settings.serving.trending_cache_s)
    rules = OverlayRules.from_settings(settings) if pending.enabled else None
    live_store = LiveCatalogueStore(guard(redis_client(settings.redis), redis_breaker(settings.redis)),
                                    settings.redis.key_prefix)

    def live(model: Callable[[], FactorModel | None]) -> LiveModel:
        return LiveModel(model, live_store, settings.serving.catalogue_poll_s, settings.content)

    def recommender(model: Callable[[], FactorModel | None]) -> Recommender:
        return Recommender(model, online, settings.serving, settings.outputs.segment_attributes,
                           interest_half_life_s=settings.stream.interest_half_life_s, pending_rules=rules)

    experiments = settings.experiments
    pins = {v.model_version for v in experiments.variants if experiments.enabled and v.model_version is not None}
    current = live(models.get)
    attributes = DeltaAttributeStore(settings)
    return Services(
        settings=settings, models=models, online=online, sink=KafkaEventSink(settings.kafka),
        recommender=recommender(current),
        recorder=PerProcess(lambda: KafkaServedRecorder.from_settings(settings, listener=count_served_record)),
        memory=PerProcess(lambda: WriteBehindMemory(
            RedisServedMemory(experiments, settings.redis, listener=count_attribution_error),
            experiments.memory_queue_max, experiments.memory_flush_wait_s)),
        attributes=attributes, user_data=UserDataService(settings), pseudonyms=pseudonyms,
        catalogue=CatalogueService(attributes, live_store), live=current,
        ingest_gate=IngestGate(settings.serving.ingest_slots, settings.serving.ingest_queue,
                               settings.serving.ingest_wait_s),
        pinned={version: recommender(live(PinnedModel(store, version, models.get)))
                for version in sorted(pins)},
        registry=store.registry, pending=pending,
    )


def services() -> Services:
    return current_app.extensions[SERVICES_EXTENSION]
