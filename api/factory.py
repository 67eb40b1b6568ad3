"""Flask app factory: wires configuration, keys and stores into blueprints that only translate HTTP.

The app is a flask-openapi3 `OpenAPI` app: the pydantic models of api/schemas.py validate requests and
make up the OpenAPI document, served at GET /openapi.json and browsable at /docs. Import it as
`from api import create_app`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from flask import jsonify
from flask_openapi3 import APIBlueprint, Info, OpenAPI

from api import DOCS_PREFIX, SPEC_PATH
from api.auth import AUTH_EXTENSION, SECURITY_SCHEMES
from api.blueprints import (
    admin,
    demo,
    events,
    health,
    items,
    prometheus,
    recommendations,
    reports,
    status,
    trending,
    users,
)
from api.errors import VALIDATION_STATUS, register_error_handlers, validation_error_response
from api.request_metrics import register_request_metrics
from api.schemas import ErrorResponse
from api.services import SERVICES_EXTENSION, Services, build_services
from recsys.config import Settings, get_settings
from recsys.services.auth import MODE_KEYS, AccessPolicy, load_policy, open_mode_banner

API_TITLE = "recsys: real-time personalised recommendations"
API_VERSION = "1.0.0"

# Every resource's blueprint factory, in the order its routes are listed in the document.
BLUEPRINTS: tuple[Callable[[Settings, AccessPolicy], APIBlueprint], ...] = (
    events.blueprint, recommendations.blueprint, items.blueprint, trending.blueprint, users.blueprint,
    admin.blueprint, status.blueprint, health.blueprint, prometheus.blueprint,
)
# The demo page and the report pages, registered when demo.enabled.
DEMO_BLUEPRINTS: tuple[Callable[[Settings, AccessPolicy], APIBlueprint], ...] = (
    demo.pages, demo.api, reports.blueprint,
)

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, services: Services | None = None) -> OpenAPI:
    """Build the API; raises recsys.config.ConfigError when it has no keys and no open-mode opt-in, or would
    run open on a non-loopback host (recsys.services.auth.load_policy)."""
    settings = settings or get_settings()
    access = load_policy(settings.env, settings.auth, settings.serving.host, os.environ)
    app = OpenAPI(
        __name__, info=Info(title=API_TITLE, version=API_VERSION), security_schemes=SECURITY_SCHEMES,
        validation_error_status=VALIDATION_STATUS, validation_error_model=ErrorResponse,
        validation_error_callback=validation_error_response, doc_prefix=DOCS_PREFIX, doc_url=SPEC_PATH,
        static_folder=None,
    )
    app.config["MAX_CONTENT_LENGTH"] = settings.events.max_body_bytes
    app.json.sort_keys = False
    app.extensions[SERVICES_EXTENSION] = services or build_services(settings)
    app.extensions[AUTH_EXTENSION] = access
    register_request_metrics(app)
    register_error_handlers(app)
    for build in (*BLUEPRINTS, *(DEMO_BLUEPRINTS if settings.demo.enabled else ())):
        app.register_api(build(settings, access))
    app.add_url_rule(SPEC_PATH, "openapi_document", lambda: jsonify(app.api_doc))
    if access.mode != MODE_KEYS:
        log.warning(open_mode_banner(access, settings.serving.host, settings.serving.port))
    log.info("API ready (env=%s, auth=%s)", settings.env, access.mode)
    return app
