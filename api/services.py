"""The long-lived objects a worker process shares across requests."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from recsys.config import Settings
from recsys.ingest.producer import EventSink, KafkaEventSink
from recsys.serving.model_cache import ModelCache
from recsys.serving.recommender import Recommender
from recsys.stores.model_store import DeltaModelStore
from recsys.stores.online_store import OnlineStore, RedisOnlineStore


@dataclass
class Services:
    settings: Settings
    models: ModelCache
    online: OnlineStore
    sink: EventSink
    recommender: Recommender


def build_services(settings: Settings) -> Services:
    models = ModelCache(DeltaModelStore(settings), settings.serving.model_refresh_s)
    online = RedisOnlineStore(settings.redis)
    return Services(settings=settings, models=models, online=online, sink=KafkaEventSink(settings.kafka),
                    recommender=Recommender(models.get, online, settings.serving,
                                            settings.outputs.segment_attributes))


def services() -> Services:
    return current_app.extensions["recsys"]
