"""Request and response schemas of the HTTP API, in one place.

flask-openapi3 reads a view's annotations: `path: <Model>`, `query: <Model>` and `body: <Model>` are
validated before the view runs (a failure answers 400 `invalid_request`, see api/errors.py) and, with the
`responses={status: <Model>}` of the route, make up the OpenAPI document at GET /openapi.json.

Models whose limits come from the configuration (k, offset, id length, exclusions, rows per upsert, segment
attributes) are built by a function of the settings when the app is created, so the document always states
the limits in force. Response models leave unknown fields allowed, so a field added to an answer does not
break clients.

Adding an endpoint: put its models in a new section at the end of this module (one section per
resource), then write the blueprint (see api/blueprints/__init__.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from flask_openapi3 import APIBlueprint
from flask_openapi3.models import Schema
from flask_openapi3.utils import get_model_schema
from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model
from pydantic.json_schema import SkipJsonSchema

from recsys.config import Settings
from recsys.contracts.catalogue import MAX_ATTRIBUTE_LENGTH, ItemAttributes, ItemPatch, UserAttributes
from recsys.contracts.events import ID_PATTERN, MAX_ID_LENGTH, Event
from recsys.contracts.model_version import VERSION_PATTERN

COMPONENTS_REF = "#/components/schemas/"
ID_CHARACTER = ID_PATTERN.removeprefix("^").removesuffix("+$")  # the id rule's character class


# --- shared --------------------------------------------------------------------------------------------

class ErrorResponse(BaseModel):
    """Every failure: a stable machine-readable code and a human-readable detail."""

    error: str = Field(description="machine-readable code, e.g. invalid_request, not_found, unauthorized")
    detail: Any = Field(description="what was wrong: a message, or a list of problems")


class QueryModel(BaseModel):
    """A query string's model. Unknown parameters are ignored. flask-openapi3 reads the model's JSON schema on
    every request (to find list parameters), which costs about a millisecond: it is computed once."""

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if args or kwargs:  # the OpenAPI document's own call (ref_template=...) is not cached
            return super().model_json_schema(*args, **kwargs)
        schema = _QUERY_SCHEMAS.get(cls)
        if schema is None:
            schema = _QUERY_SCHEMAS[cls] = super().model_json_schema()
        return schema


_QUERY_SCHEMAS: WeakKeyDictionary[type, dict[str, Any]] = WeakKeyDictionary()


def error_responses(*statuses: int) -> dict[int, type[BaseModel]]:
    """`responses=` entries for error statuses, all answered with ErrorResponse."""
    return dict.fromkeys(statuses, ErrorResponse)


def json_body(bp: APIBlueprint, model: type[BaseModel], description: str) -> dict[str, Any]:
    """`openapi_extensions` documenting a JSON request body that the view validates itself.

    For endpoints whose contract has its own error codes (POST /v1/events answers `invalid_event` with
    per-item problems, `empty_batch`, `batch_too_large`), so the body is not validated by flask-openapi3.
    """
    schema = get_model_schema(model)
    for name, definition in schema.pop("$defs", {}).items():
        bp.components_schemas[name] = Schema(**definition)
    bp.components_schemas[model.__name__] = Schema(**schema)
    return {"requestBody": {"description": description, "required": True, "content": {
        "application/json": {"schema": {"$ref": f"{COMPONENTS_REF}{model.__name__}"}}}}}


def _no_default(schema: dict[str, Any]) -> None:
    """An optional parameter is left out, never sent as null: drop pydantic's `default: null`."""
    schema.pop("default", None)


def unavailable_response(description: str) -> dict[str, Any]:
    """A documented 503: ErrorResponse with a Retry-After header (api.errors.unavailable)."""
    return {"description": description,
            "headers": {"Retry-After": {"schema": {"type": "string"}, "description": "seconds to wait"}},
            "content": {"application/json": {"schema": {"$ref": f"{COMPONENTS_REF}{ErrorResponse.__name__}"}}}}


COMMIT_CONFLICT_RESPONSE = unavailable_response(
    "commit_conflict: the Delta commit kept losing to concurrent writers; retry after Retry-After seconds")


def scored_items(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Ranked items (recsys.serving.results.ScoredItem) as answered: `contributions` only when explained.

    The fields as they are (vars), not asdict's deep copies: jsonify only reads them, on every request."""
    return [{key: value for key, value in vars(item).items() if key != "contributions" or value is not None}
            for item in items]


@lru_cache(maxsize=8)
def user_path(max_length: int) -> type[BaseModel]:
    """Path `<user_id>`: the event contract's id rule, at most `serving.max_id_length` characters."""
    return create_model("UserPath", user_id=(str, Field(
        min_length=1, max_length=max_length, pattern=ID_PATTERN, description="the shopper's id")))


# --- health --------------------------------------------------------------------------------------------

class HealthResponse(BaseModel):
    status: str


class ReadyCheck(BaseModel):
    ok: bool


class ReadyResponse(BaseModel):
    """Readiness of one role: the checks it needs (serving.readiness); `auth` says whether the API runs open or
    with keys."""

    ready: bool
    role: str
    env: str
    auth: str = Field(description="open (no key needed), keys, or partial (only ingest needs a key)")
    checks: dict[str, ReadyCheck]


METRICS_RESPONSE: dict[str, Any] = {"description": "Prometheus text exposition format", "content": {
    "text/plain": {"schema": {"type": "string"}}}}


# --- events --------------------------------------------------------------------------------------------

class EventBatch(RootModel[Event | Annotated[list[Event], Field(min_length=1)]]):
    """One event, or a non-empty list of at most `events.max_batch` events."""


class EventsAccepted(BaseModel):
    accepted: int = Field(description="events the broker acknowledged")
    event_ids: list[str] = Field(description="the events' ids, in the order sent")


# --- recommendations -----------------------------------------------------------------------------------

class ScoredItemResponse(BaseModel):
    item_id: str
    score: float
    reasons: list[str]
    contributions: dict[str, float] | SkipJsonSchema[None] = Field(
        default=None, description="signal -> its part of the score; only with explain=true",
        json_schema_extra=_no_default)


class RecommendationsResponse(BaseModel):
    user_id: str
    model_version: str | None = Field(description="the model version served; null when none is published")
    degraded: bool = Field(description="true when the real-time state could not be read")
    variant: str = Field(description="the shopper's A/B variant (experiments.variants), or off")
    rec_id: str = Field(description="the list's id; events on its items are attributed to it (context.rec_id)")
    items: list[ScoredItemResponse]
    buy_again: list[ScoredItemResponse] | SkipJsonSchema[None] = Field(
        default=None, description="items the shopper already owns, shown on purpose and labelled; only with "
        "serving.repurchase.buy_again_k > 0 and when there are any", json_schema_extra=_no_default)


def _optional_query(annotation: Any, description: str, **constraints: Any) -> tuple[Any, Any]:
    """An optional query parameter: documented without null (a query string cannot send one). The
    constraints sit on the type itself, so the document states them (on the union pydantic drops some)."""
    return (Annotated[annotation, Field(**constraints)] | SkipJsonSchema[None], Field(
        default=None, description=description, json_schema_extra=_no_default))


def id_list_pattern(max_ids: int, max_length: int) -> str:
    """1 to `max_ids` comma-separated ids, each by the event contract's id rule (at most `max_length` chars)."""
    one = f"{ID_CHARACTER}{{1,{max_length}}}"
    return f"^{one}(,{one}){{0,{max_ids - 1}}}$"


def exclude_ids(value: str | None) -> frozenset[str]:
    """`exclude=a,b` (validated by id_list_pattern) as a set of item ids."""
    return frozenset(value.split(",")) if value else frozenset()


def _page_fields(settings: Settings) -> dict[str, Any]:
    """k and offset of every ranked list."""
    serving = settings.serving
    return {
        "k": (int, Field(default=serving.default_k, ge=1, le=serving.max_k, description="how many items to return")),
        "offset": (int, Field(default=0, ge=0, le=serving.max_offset,
                              description="items to skip: the page is [offset, offset + k) of the ranking")),
    }


def _attribute_description(name: str) -> str:
    return f"the shopper's {name}; only used for a shopper without history"


def recommendation_query(settings: Settings) -> type[BaseModel]:
    """k, offset and filters within the configured limits, and the optional segment attributes that pick
    cold-start lists."""
    serving = settings.serving
    fields: dict[str, Any] = {
        **_page_fields(settings),
        "category": _optional_query(str, "only items of this category (the catalogue's `category`)",
                                    min_length=1, max_length=MAX_ATTRIBUTE_LENGTH),
        "brand": _optional_query(str, "only items of this brand", min_length=1, max_length=MAX_ATTRIBUTE_LENGTH),
        "min_price": _optional_query(float, "only items at least this price", ge=0, allow_inf_nan=False),
        "max_price": _optional_query(float, "only items at most this price", ge=0, allow_inf_nan=False),
        "exclude": _optional_query(
            str, f"comma-separated item ids never to return (at most {serving.max_exclude})",
            pattern=id_list_pattern(serving.max_exclude, serving.max_id_length)),
        "explain": (bool, Field(default=False, description="add each item's contributions (signal -> score part)")),
        "include_unavailable": (bool, Field(default=False, description="also items out of stock (available false)")),
    }
    for name in settings.outputs.segment_attributes:
        fields[name] = _optional_query(str, _attribute_description(name), min_length=1,
                                       max_length=serving.max_id_length, pattern=r"\S")
    return create_model("RecommendationQuery", __base__=QueryModel, **fields)


# --- anonymous recommendations -------------------------------------------------------------------------

def _item_id(max_length: int) -> Any:
    return Annotated[str, Field(min_length=1, max_length=max_length, pattern=ID_PATTERN)]


def anonymous_body(settings: Settings) -> type[BaseModel]:
    """A visitor without an id: the items seen this session, the page, filters and segment attributes."""
    serving = settings.serving
    item = _item_id(serving.max_id_length)
    fields: dict[str, Any] = {
        "seen_items": (list[item], Field(  # type: ignore[valid-type]
            max_length=serving.max_seen_items,
            description="items the visitor saw this session, oldest first; never returned")),
        **_page_fields(settings),
        "category": (str | None, Field(default=None, min_length=1, max_length=MAX_ATTRIBUTE_LENGTH)),
        "brand": (str | None, Field(default=None, min_length=1, max_length=MAX_ATTRIBUTE_LENGTH)),
        "min_price": (float | None, Field(default=None, ge=0, allow_inf_nan=False)),
        "max_price": (float | None, Field(default=None, ge=0, allow_inf_nan=False)),
        "exclude": (list[item], Field(  # type: ignore[valid-type]
            default_factory=list, max_length=serving.max_exclude, description="item ids never to return")),
        "explain": (bool, Field(default=False, description="add each item's contributions")),
        "include_unavailable": (bool, Field(default=False, description="also items out of stock (available false)")),
    }
    for name in settings.outputs.segment_attributes:
        fields[name] = (str | None, Field(default=None, min_length=1, max_length=serving.max_id_length,
                                          pattern=r"\S", description=_attribute_description(name)))
    return create_model("AnonymousRecommendationRequest", __config__=ConfigDict(extra="forbid", strict=True),
                        **fields)


class AnonymousRecommendationsResponse(BaseModel):
    model_version: str | None
    degraded: bool = Field(description="true when the live signals could not be read")
    items: list[ScoredItemResponse]


# --- similar items -------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def item_path(max_length: int) -> type[BaseModel]:
    """Path `<item_id>`: the event contract's id rule, at most `serving.max_id_length` characters."""
    return create_model("ItemPath", item_id=(str, Field(
        min_length=1, max_length=max_length, pattern=ID_PATTERN, description="the item's id")))


def k_query(settings: Settings, name: str, **extra: tuple[Any, Any]) -> type[BaseModel]:
    """`?k=` within `serving.max_k` (and `extra` parameters)."""
    serving = settings.serving
    return create_model(name, __base__=QueryModel, k=(int, Field(
        default=serving.default_k, ge=1, le=serving.max_k, description="how many items to return")), **extra)


def similar_query(settings: Settings) -> type[BaseModel]:
    return k_query(settings, "SimilarQuery")


class SimilarItemsResponse(BaseModel):
    item_id: str
    items: list[ScoredItemResponse]


# --- trending ------------------------------------------------------------------------------------------

def trending_query(settings: Settings) -> type[BaseModel]:
    return k_query(settings, "TrendingQuery", category=_optional_query(
        str, "only items of this category", min_length=1, max_length=MAX_ATTRIBUTE_LENGTH))


class TrendingResponse(BaseModel):
    degraded: bool = Field(description="true when Redis failed: the model's popularity instead of the live view")
    items: list[ScoredItemResponse]


# --- catalogue and user attributes ---------------------------------------------------------------------

class _StrictJson:
    """Validates a JSON body's types as sent (no "5" for 5, no false for 0), nested rows included:
    flask-openapi3 validates the parsed body in pydantic's lax Python mode otherwise."""

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        return super().model_validate(obj, **{**kwargs, "strict": True})  # type: ignore[misc]

    @classmethod
    def model_validate_json(cls, json_data: Any, **kwargs: Any) -> Any:
        return super().model_validate_json(json_data, **{**kwargs, "strict": True})  # type: ignore[misc]


@lru_cache(maxsize=8)
def item_rows(max_rows: int) -> type[BaseModel]:
    """PUT /v1/items: 1 to `delta_rs.max_upsert_rows` catalogue rows (recsys.contracts.catalogue)."""

    class ItemRows(_StrictJson, RootModel[Annotated[list[ItemAttributes], Field(min_length=1, max_length=max_rows)]
                                          | ItemAttributes]):
        """Catalogue items (a list, or one item), each replacing the stored row of its id (a field left out is
        stored as null)."""

        def rows(self) -> list[ItemAttributes]:
            return self.root if isinstance(self.root, list) else [self.root]

    return ItemRows


@lru_cache(maxsize=8)
def item_patches(max_rows: int) -> type[BaseModel]:
    """PATCH /v1/items: 1 to `delta_rs.max_upsert_rows` partial updates (recsys.contracts.catalogue.ItemPatch)."""

    class ItemPatches(_StrictJson, RootModel[Annotated[list[ItemPatch], Field(min_length=1, max_length=max_rows)]
                                             | ItemPatch]):
        """Partial updates (a list, or one), e.g. [{"item_id": "i42", "available": false}]: only the fields
        sent change; an unknown id is created with them."""

        def rows(self) -> list[ItemPatch]:
            return self.root if isinstance(self.root, list) else [self.root]

    return ItemPatches


@lru_cache(maxsize=8)
def user_rows(max_rows: int) -> type[BaseModel]:
    """PUT /v1/users: 1 to `delta_rs.max_upsert_rows` user attribute rows."""

    class UserRows(_StrictJson, RootModel[Annotated[list[UserAttributes], Field(min_length=1, max_length=max_rows)]]):
        """Users' attributes, each replacing the stored row of its id (a field left out is stored as null)."""

    return UserRows


class UpsertResponse(BaseModel):
    inserted: int = Field(description="rows whose id was new")
    updated: int = Field(description="rows that replaced a stored one")


class CatalogueUpsertResponse(UpsertResponse):
    catalogue_version: int | None = Field(description="the live catalogue version serving workers pick up within "
                                          "serving.catalogue_poll_s; null when Redis failed (then served from the "
                                          "next model load)")


# --- user data: history and erasure --------------------------------------------------------------------

def history_query(settings: Settings) -> type[BaseModel]:
    """`?limit=`: the newest bronze events to add, 0 (real-time state only) to delta_rs.max_history_events."""
    return create_model("HistoryQuery", __base__=QueryModel, limit=(int, Field(
        default=0, ge=0, le=settings.delta_rs.max_history_events,
        description="newest recorded events to include (0: only the real-time state)")))


class HistoryResponse(BaseModel):
    """What the API holds on a shopper (recsys.services.user_data): the speed layer's state and events."""

    user_id: str
    realtime: dict[str, Any] | None = Field(description="recent items, sessions, purchases, cart, interests; "
                                                        "null when Redis could not be read")
    events: list[dict[str, Any]] | None = Field(description="newest events first; null when not asked for or "
                                                            "the lake could not be read")
    degraded: bool
    unavailable: list[str] = Field(description="sources that could not be read: redis, delta")


class ForgetResponse(BaseModel):
    user_id: str
    redis_keys: int = Field(description="Redis keys deleted")
    delta_rows: dict[str, int] = Field(description="rows deleted per Delta table")


# --- admin ---------------------------------------------------------------------------------------------

class VersionPath(BaseModel):
    version: str = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=VERSION_PATTERN,
                         description="a registered model version, e.g. 2026-11-28.1")


class ActivateResponse(BaseModel):
    previous: str | None = Field(description="the version current before (null: none was published)")
    current: str = Field(description="the version now current, served by this worker from the next request")


# --- status --------------------------------------------------------------------------------------------

class QueryProgressResponse(BaseModel):
    """One speed-layer query's last report (recsys.services.status); null: not reported yet."""

    batch_id: int | None
    lag_mean_s: float | None = Field(description="mean seconds from an event's time to applied, last micro-batch")
    lag_max_s: float | None = Field(description="largest seconds from an event's time to applied, last micro-batch")
    kafka_lag: int | None = Field(description="records in Kafka the query has not processed yet")
    batch_seconds: float | None = Field(description="duration of the last micro-batch")
    age_s: float | None = Field(description="seconds since the query last reported")


class StatusResponse(BaseModel):
    model_version: str | None = Field(description="the model version served; null when none is published")
    redis: bool = Field(description="Redis answered; without it the stream's progress is unknown (empty)")
    stream: dict[str, QueryProgressResponse] = Field(
        description="per speed-layer query: events_to_redis (real-time state), events_to_bronze (Delta)")


# --- catalogue lookup ----------------------------------------------------------------------------------

def items_query(settings: Settings) -> type[BaseModel]:
    """`?ids=a,b`: 1 to serving.max_k item ids (a page of any list)."""
    serving = settings.serving
    return create_model("ItemsQuery", __base__=QueryModel, ids=(str, Field(
        pattern=id_list_pattern(serving.max_k, serving.max_id_length),
        description=f"comma-separated item ids (at most {serving.max_k})")))


class ItemCardResponse(BaseModel):
    item_id: str
    category: str | None
    brand: str | None
    price: float | None


class ItemsResponse(BaseModel):
    items: list[ItemCardResponse] = Field(description="the items the served model knows, in the order asked; "
                                                      "unknown ids are left out")


# --- demo page -----------------------------------------------------------------------------------------

HTML_RESPONSE: dict[str, Any] = {"description": "an HTML page", "content": {
    "text/html": {"schema": {"type": "string"}}}}
ASSET_RESPONSE: dict[str, Any] = {"description": "the page's script or style sheet", "content": {
    "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}}}
ASSET_PATTERN = r"^[a-z]+\.(js|css)$"


class AssetPath(BaseModel):
    name: str = Field(max_length=MAX_ID_LENGTH, pattern=ASSET_PATTERN, description="e.g. demo.js, demo.css")


class ShoppersResponse(BaseModel):
    shoppers: list[str] = Field(description="user ids the served model has factors for (none when ids are "
                                            "pseudonymised)")
