"""Flask app factory: wires configuration and stores into blueprints that only translate HTTP."""

from __future__ import annotations

import logging

from flask import Flask

from api.blueprints import events, health, metrics, recommendations
from api.errors import register_error_handlers
from api.services import Services, build_services
from recsys.config import Settings, get_settings


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.events.max_body_bytes
    app.json.sort_keys = False
    app.extensions["recsys"] = services or build_services(settings)
    register_error_handlers(app)
    for blueprint in (events.bp, recommendations.bp, health.bp, metrics.bp):
        app.register_blueprint(blueprint)
    logging.getLogger(__name__).info("API ready (env=%s)", settings.env)
    return app
