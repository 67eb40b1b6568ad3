"""Liveness and readiness (open: probes send no key)."""

from flask import jsonify
from flask_openapi3 import APIBlueprint

from api.auth import access_policy
from api.blueprints import resource_blueprint
from api.schemas import HealthResponse, ReadyResponse
from api.services import services
from recsys.config import Settings
from recsys.services.auth import AccessPolicy


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("health", __name__, access, scope=None, description="liveness and readiness probes")

    @bp.get("/healthz", responses={200: HealthResponse})
    def healthz():
        """Liveness: the process answers."""
        return jsonify({"status": "ok"})

    @bp.get("/readyz", responses={200: ReadyResponse, 503: ReadyResponse})
    def readyz():
        """Readiness: a model is loaded and Redis and Kafka answer (503 otherwise)."""
        svc = services()
        model = svc.models.get()
        checks = {
            "model": {"ok": model is not None, "version": model.version if model else None,
                      "error": svc.models.last_error},
            "redis": {"ok": svc.online.ping()},
            "kafka": {"ok": svc.sink.ping()},
        }
        ready = all(c["ok"] for c in checks.values())
        body = {"ready": ready, "env": svc.settings.env, "auth": access_policy().mode, "checks": checks}
        return jsonify(body), 200 if ready else 503

    return bp
