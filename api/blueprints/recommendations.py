"""GET /v1/users/<user_id>/recommendations and POST /v1/recommendations/anonymous."""

from flask import jsonify
from flask_openapi3 import APIBlueprint

from api.blueprints import resource_blueprint
from api.schemas import (
    AnonymousRecommendationsResponse,
    RecommendationsResponse,
    anonymous_body,
    error_responses,
    exclude_ids,
    recommendation_query,
    scored_items,
    user_path,
)
from api.services import services
from recsys.config import Settings
from recsys.services.auth import AccessPolicy, Scope
from recsys.serving.results import RecommendationQuery


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("recommendations", __name__, access, scope=Scope.READ, url_prefix="/v1",
                            description="ranked, explained recommendations for a shopper or a visitor")
    user_path_model = user_path(settings.serving.max_id_length)
    query_model = recommendation_query(settings)
    anonymous_model = anonymous_body(settings)
    attribute_names = settings.outputs.segment_attributes

    def attributes_of(request) -> dict[str, str]:
        return {name: value for name in attribute_names if (value := getattr(request, name)) is not None}

    @bp.get("/users/<user_id>/recommendations",
            responses={200: RecommendationsResponse, **error_responses(400, 404)})
    def user_recommendations(path: user_path_model, query: query_model):  # models built from the settings
        """A shopper's page of recommendations, merged from the batch model and the real-time state, with reasons.

        A shopper without history gets what shoppers of the same segment (the optional attributes) like.
        The list is served under the shopper's A/B variant and recorded with its `rec_id`.
        """
        svc = services()
        request = RecommendationQuery(
            k=query.k, offset=query.offset, category=query.category, brand=query.brand, min_price=query.min_price,
            max_price=query.max_price, exclude=exclude_ids(query.exclude), explain=query.explain,
            attributes=attributes_of(query), include_unavailable=query.include_unavailable)
        served = svc.serve(svc.pseudonyms.user_id(path.user_id), request)
        answer = served.recommendations
        body = {"user_id": path.user_id,  # the caller's id, not the pseudonym
                "model_version": answer.model_version, "degraded": answer.degraded,
                "variant": served.variant, "rec_id": served.rec_id, "items": scored_items(answer.items)}
        if answer.buy_again:
            body["buy_again"] = scored_items(answer.buy_again)
        return jsonify(body)

    @bp.post("/recommendations/anonymous",
             responses={200: AnonymousRecommendationsResponse, **error_responses(400)})
    def anonymous_recommendations(body: anonymous_model):
        """A visitor without an id: ranked from the items seen this session (never returned themselves)."""
        request = RecommendationQuery(
            k=body.k, offset=body.offset, category=body.category, brand=body.brand, min_price=body.min_price,
            max_price=body.max_price, exclude=frozenset(body.exclude), explain=body.explain,
            attributes=attributes_of(body), include_unavailable=body.include_unavailable)
        answer = services().recommender.anonymous(body.seen_items, request)
        return jsonify({"model_version": answer.model_version, "degraded": answer.degraded,
                        "items": scored_items(answer.items)})

    return bp
