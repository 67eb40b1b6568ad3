"""GET /v1/items/<item_id>/similar, GET /v1/items?ids=, PUT and PATCH /v1/items (the catalogue)."""

from collections.abc import Callable
from dataclasses import asdict

from flask import jsonify
from flask_openapi3 import APIBlueprint

from api.blueprints import resource_blueprint
from api.errors import ApiError, unavailable
from api.schemas import (
    COMMIT_CONFLICT_RESPONSE,
    CatalogueUpsertResponse,
    ItemsResponse,
    SimilarItemsResponse,
    error_responses,
    item_patches,
    item_path,
    item_rows,
    items_query,
    scored_items,
    similar_query,
)
from api.services import services
from recsys.config import Settings
from recsys.services.auth import AccessPolicy, Scope
from recsys.services.catalogue import CatalogueWrite
from recsys.serving.results import UnknownItemError
from recsys.stores.delta_rs import CommitConflictError


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("items", __name__, access, scope=Scope.READ, view_scopes={"put_items": Scope.CATALOGUE,
                                                                                  "patch_items": Scope.CATALOGUE},
                            url_prefix="/v1", description="similar items, and the catalogue's attributes")
    item_path_model = item_path(settings.serving.max_id_length)
    query_model = similar_query(settings)
    rows_model = item_rows(settings.delta_rs.max_upsert_rows)
    patches_model = item_patches(settings.delta_rs.max_upsert_rows)
    ids_model = items_query(settings)

    @bp.get("/items/<item_id>/similar", responses={200: SimilarItemsResponse, **error_responses(400, 404)})
    def similar_items(path: item_path_model, query: query_model):  # models built from the settings
        """Items like this one: the batch model's neighbours blended with the live co-views.

        404 `unknown_item` for an item neither the served model nor its catalogue knows; an empty list
        while no model is published.
        """
        try:
            items = services().recommender.similar(path.item_id, query.k)
        except UnknownItemError as exc:
            raise ApiError(404, "unknown_item", f"item {path.item_id!r} is not in the served model") from exc
        return jsonify({"item_id": path.item_id, "items": scored_items(items)})

    @bp.get("/items", responses={200: ItemsResponse, **error_responses(400)})
    def get_items(query: ids_model):  # model built from the settings
        """Category, brand and price of items, as the served model's catalogue has them (what a page shows
        beside an item id); ids the served model does not rank are left out."""
        cards = services().recommender.describe(query.ids.split(","))
        return jsonify({"items": [asdict(card) for card in cards]})

    @bp.put("/items", responses={200: CatalogueUpsertResponse, **error_responses(400),
                                 503: COMMIT_CONFLICT_RESPONSE})
    def put_items(body: rows_model):
        """Insert or replace catalogue items (the `items` table; a list or one item), in one Delta commit.

        The change is also published to the live catalogue: every serving worker filters, explains and
        ranks with it within serving.catalogue_poll_s, without a model reload; a new item gets a content
        profile at once. The speed layer's interests see it within stream.catalogue_refresh_s.
        """
        return _written(lambda: services().catalogue.put(body.rows()))

    @bp.patch("/items", responses={200: CatalogueUpsertResponse, **error_responses(400),
                                   503: COMMIT_CONFLICT_RESPONSE})
    def patch_items(body: patches_model):
        """Change some fields of catalogue items (a list or one), e.g. `[{"item_id": "i42", "available": false}]`.

        Fields left out keep their stored values; an unknown id is created. `available: false` keeps the
        item out of every answer that does not ask for unavailable items; `blocked: true` out of all.
        """
        return _written(lambda: services().catalogue.patch(body.rows()))

    return bp


def _written(write: Callable[[], CatalogueWrite]):
    try:
        done = write()
    except CommitConflictError as exc:
        raise unavailable("commit_conflict", str(exc)) from exc
    return jsonify({**asdict(done.counts), "catalogue_version": done.version})
