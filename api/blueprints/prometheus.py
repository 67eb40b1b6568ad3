"""Prometheus metrics: the speed layer's freshness and Kafka lag, and the model being served.

The stream records its progress in Redis (recsys.speed.stream.record_progress); a custom collector
reads it at scrape time, so every API worker reports the same figures. The request metrics and the
served-list counters (api.request_metrics) come from every worker too, through prometheus_client's
multiprocess files; a worker counts a record's delivery when it next produces a record or is scraped.
"""

import time

import redis
from flask import Response
from flask_openapi3 import APIBlueprint
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily

from api.blueprints import resource_blueprint
from api.request_metrics import request_collector
from api.schemas import METRICS_RESPONSE
from api.services import Services, services
from recsys.config import Settings
from recsys.contracts.redis_keys import BRONZE_QUERY, REALTIME_QUERY
from recsys.services.auth import AccessPolicy

# (progress field, metric name, help)
_GAUGES = (
    ("lag_mean_s", "recsys_stream_event_lag_mean_seconds", "Mean time from event time to applied, last batch"),
    ("lag_max_s", "recsys_stream_event_lag_max_seconds", "Largest time from event time to applied, last batch"),
    ("kafka_lag", "recsys_stream_kafka_lag_records", "Records in Kafka the query has not processed yet"),
    ("seconds", "recsys_stream_batch_seconds", "Duration of the last micro-batch"),
    ("batch_id", "recsys_stream_batch_id", "Id of the last micro-batch"),
)


class SpeedLayerCollector:
    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def collect(self):
        gauges = {field: GaugeMetricFamily(name, text, labels=["query"]) for field, name, text in _GAUGES}
        age = GaugeMetricFamily("recsys_stream_progress_age_seconds", "Seconds since the query last reported",
                                labels=["query"])
        up = GaugeMetricFamily("recsys_redis_up", "1 when Redis answered this scrape")
        try:
            for query in (REALTIME_QUERY, BRONZE_QUERY):
                progress = self._svc.online.stream_progress(query)
                for field, gauge in gauges.items():
                    if progress.get(field) not in (None, ""):
                        gauge.add_metric([query], float(progress[field]))
                if progress.get("updated_at"):
                    age.add_metric([query], time.time() - float(progress["updated_at"]))
            up.add_metric([], 1.0)
        except redis.RedisError:
            up.add_metric([], 0.0)
        model = self._svc.models.get()
        info = GaugeMetricFamily("recsys_model_info", "The model version being served", labels=["version"])
        info.add_metric([model.version if model else "none"], 1.0)
        yield from (*gauges.values(), age, up, info)


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("metrics", __name__, access, scope=None, description="Prometheus scrape endpoint")

    @bp.get("/metrics", responses={200: METRICS_RESPONSE})
    def metrics():
        """Request latency and errors, served-record outcomes and attribution errors, the speed layer's freshness
        and lag, and the model being served."""
        svc = services()
        recorder = svc.recorder.built()
        if recorder is not None:
            recorder.stats()  # serves this worker's pending delivery reports, so they are counted now
        registry = CollectorRegistry()
        registry.register(SpeedLayerCollector(svc))
        registry.register(request_collector())
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    return bp
