"""The HTTP API (flask-openapi3): `create_app(settings, services)` builds it (api/factory.py).

This package's own import is light on purpose: each server worker imports `api.wsgi`, hence this package, first, and
api/wsgi.py must limit the BLAS threads before numpy is imported (recsys.serving.blas_threads). The factory
and everything it imports (numpy among them) load on first use of `create_app`.
"""

from __future__ import annotations

from typing import Any

SPEC_PATH = "/openapi.json"  # the OpenAPI document (also at DOCS_PREFIX + SPEC_PATH, for the UI)
DOCS_PREFIX = "/docs"  # /docs/ lists the UIs, /docs/swagger is Swagger UI

_FACTORY_NAMES = frozenset({"create_app", "BLUEPRINTS", "API_TITLE", "API_VERSION"})


def __getattr__(name: str) -> Any:
    """`api.create_app` (and the factory's other names), imported from api/factory.py on first use."""
    if name in _FACTORY_NAMES:
        from api import factory

        return getattr(factory, name)
    raise AttributeError(f"module 'api' has no attribute {name!r}")
