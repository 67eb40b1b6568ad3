"""Every failure answers JSON `{"error", "detail"}`: never an HTML page or a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

VALIDATION_STATUS = 400
VALIDATION_ERROR = "invalid_request"
UNAVAILABLE_STATUS = 503
RETRY_AFTER_S = "5"  # what a 503 asks the client to wait before retrying
# Headers of a werkzeug HTTPException kept on the JSON answer (e.g. Allow on 405); its own body headers are not.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: object = None, headers: dict | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


def unavailable(error: str, detail: object) -> ApiError:
    """503 with Retry-After: a dependency (broker, Redis, a Delta commit) failed; retrying is safe."""
    return ApiError(UNAVAILABLE_STATUS, error, detail, {"Retry-After": RETRY_AFTER_S})


def error_response(status: int, error: str, detail: object = None, headers: dict | None = None) -> Response:
    """The JSON error answer; the error code is kept on `g` for the error counter (api.request_metrics)."""
    g.recsys_error = error
    response = jsonify({"error": error, "detail": detail})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """A pydantic error as `[{"field", "message"}]` (the input values are not echoed)."""
    return [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]


def validation_error_response(exc: ValidationError) -> Response:
    """flask-openapi3's answer to a path, query or body that fails its pydantic model."""
    return error_response(VALIDATION_STATUS, VALIDATION_ERROR, problems(exc))


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {k: v for k, v in exc.get_headers() if k.lower() not in _BODY_HEADERS}
        return error_response(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the server failed; the error was logged")
