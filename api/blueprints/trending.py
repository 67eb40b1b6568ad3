"""GET /v1/trending."""

from flask import jsonify
from flask_openapi3 import APIBlueprint

from api.blueprints import resource_blueprint
from api.schemas import TrendingResponse, error_responses, scored_items, trending_query
from api.services import services
from recsys.config import Settings
from recsys.services.auth import AccessPolicy, Scope


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("trending", __name__, access, scope=Scope.READ, url_prefix="/v1",
                            description="what shoppers engage with right now")
    query_model = trending_query(settings)

    @bp.get("/trending", responses={200: TrendingResponse, **error_responses(400)})
    def trending(query: query_model):  # model built from the settings
        """The live trending view (optionally of one category); the model's popularity while Redis is down."""
        result = services().recommender.trending(query.k, query.category)
        return jsonify({"degraded": result.degraded, "items": scored_items(result.items)})

    return bp
