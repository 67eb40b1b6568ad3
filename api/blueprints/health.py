"""Liveness and readiness (open: probes send no key).

Readiness is per role (serving.readiness): a replica that serves reads is ready with a model loaded, even
while Kafka is down; one that takes events needs the broker. Only what the role needs is checked, so a
serving probe never waits on a dead broker.
"""

from collections.abc import Callable

from flask import jsonify
from flask_openapi3 import APIBlueprint
from pydantic import BaseModel, Field

from api.auth import access_policy
from api.blueprints import resource_blueprint
from api.errors import ApiError
from api.schemas import HealthResponse, ReadyResponse, error_responses
from api.services import Services, services
from recsys.config import DEFAULT_READINESS_ROLE, Settings
from recsys.services.auth import AccessPolicy


def _model(svc: Services) -> dict:
    model = svc.models.get()
    return {"ok": model is not None, "version": model.version if model else None, "error": svc.models.last_error}


# Every check a role may name (serving.readiness).
CHECKS: dict[str, Callable[[Services], dict]] = {
    "model": _model,
    "redis": lambda svc: {"ok": svc.online.ping()},
    "kafka": lambda svc: {"ok": svc.sink.ping()},
}


class RolePath(BaseModel):
    role: str = Field(description="a role of serving.readiness, e.g. serving or ingest")


def readiness(role: str) -> tuple[dict, int]:
    """The role's checks, 200 when all pass, else 503."""
    svc = services()
    needs = svc.settings.serving.readiness.get(role)
    if needs is None:
        raise ApiError(404, "unknown_role", f"roles: {sorted(svc.settings.serving.readiness)}")
    checks = {name: CHECKS[name](svc) for name in needs}
    ready = all(c["ok"] for c in checks.values())
    body = {"ready": ready, "role": role, "env": svc.settings.env, "auth": access_policy().mode, "checks": checks}
    return body, 200 if ready else 503


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("health", __name__, access, scope=None, description="liveness and readiness probes")

    @bp.get("/healthz", responses={200: HealthResponse})
    def healthz():
        """Liveness: the process answers."""
        return jsonify({"status": "ok"})

    @bp.get("/readyz", responses={200: ReadyResponse, 503: ReadyResponse})
    def readyz():
        """Readiness of the serving role (serving.readiness.serving: a model loaded; Kafka is not needed)."""
        body, status = readiness(DEFAULT_READINESS_ROLE)
        return jsonify(body), status

    @bp.get("/readyz/<role>", responses={200: ReadyResponse, 503: ReadyResponse, **error_responses(404)})
    def role_readyz(path: RolePath):
        """Readiness of one role of serving.readiness (e.g. /readyz/ingest: the broker and the events topic)."""
        body, status = readiness(path.role)
        return jsonify(body), status

    return bp
