"""GET /v1/status: the served model version and the speed layer's freshness, as JSON."""

from dataclasses import asdict

from flask import jsonify
from flask_openapi3 import APIBlueprint

from api.blueprints import resource_blueprint
from api.schemas import StatusResponse
from api.services import services
from recsys.config import Settings
from recsys.services.auth import AccessPolicy, Scope


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("status", __name__, access, scope=Scope.READ, url_prefix="/v1",
                            description="the served model and the speed layer's freshness")

    @bp.get("/status", responses={200: StatusResponse})
    def status():
        """The model version served and each speed-layer query's last progress: event lag, Kafka lag, batch
        duration and the seconds since it last reported (the figures /metrics exports, as JSON)."""
        return jsonify(asdict(services().status()))

    return bp
