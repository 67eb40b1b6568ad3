"""One blueprint per resource, each built by a `blueprint(settings, access)` function of its module.

Adding a resource:

1. its request/response models in a new section of api/schemas.py;
2. a module here with (trending.py in full)

       def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
           bp = resource_blueprint("trending", __name__, access, scope=Scope.READ, url_prefix="/v1")
           query_model = trending_query(settings)  # limits from the settings

           @bp.get("/trending", responses={200: TrendingResponse, **error_responses(400)})
           def trending(query: query_model):
               \"\"\"Summary line shown in the docs.\"\"\"
               result = services().recommender.trending(query.k, query.category)  # HTTP -> library call
               return jsonify({"degraded": result.degraded, "items": scored_items(result.items)})

           return bp

3. the function added to `BLUEPRINTS` in api/factory.py.

`resource_blueprint` installs the API-key check of the scope and documents it (security, 401 and 403), so
views never deal with keys; flask-openapi3 validates `path`, `query` and `body` from the annotations.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_openapi3 import APIBlueprint, Tag

from api.auth import SECURITY_REQUIREMENT, require_key
from api.schemas import ErrorResponse
from recsys.services.auth import AccessPolicy, Scope


def _operation_id(*, bp_name: str = "", name: str = "", path: str = "", method: str = "") -> str:
    """`<blueprint>_<view function>`, e.g. `recommendations_user_recommendations` (flask-openapi3 callback)."""
    return f"{bp_name}_{name}"


def resource_blueprint(name: str, import_name: str, access: AccessPolicy, *, scope: Scope | None,
                       view_scopes: Mapping[str, Scope] | None = None, url_prefix: str = "",
                       description: str | None = None) -> APIBlueprint:
    """An APIBlueprint tagged `name`, guarded by the keys of `scope` (None: open to all, e.g. health);
    `view_scopes` gives some views (by function name) another scope, e.g. PUT /v1/items is catalogue."""
    responses: dict[int, type[ErrorResponse]] = {400: ErrorResponse}  # flask-openapi3's validation answer
    security = None
    bp_kwargs = {"url_prefix": url_prefix} if url_prefix else {}
    scopes = {scope, *(view_scopes or {}).values()} - {None}
    if any(not access.is_open(s) for s in scopes):
        security = SECURITY_REQUIREMENT
        responses[401] = ErrorResponse
        responses[403] = ErrorResponse
    bp = APIBlueprint(name, import_name, abp_tags=[Tag(name=name, description=description)],
                      abp_security=security, abp_responses=responses, operation_id_callback=_operation_id,
                      **bp_kwargs)
    if scope is not None:
        bp.before_request(require_key(scope, view_scopes))
    return bp
