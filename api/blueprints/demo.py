"""GET /demo: a page to try the recommender as a shopper or a visitor; GET /v1/demo/shoppers: whom to pick.

The page is plain HTML, CSS and JavaScript (api/templates/demo.html, api/static/demo/), no build step and no
CDN: it calls the public endpoints with fetch, so what it shows is what any client gets. Registered only when
demo.enabled; the page itself is open (a browser sends no key), the endpoints it calls keep their keys.
"""

from pathlib import Path

from flask import jsonify, render_template, send_from_directory
from flask_openapi3 import APIBlueprint

from api.blueprints import resource_blueprint
from api.schemas import ASSET_RESPONSE, HTML_RESPONSE, AssetPath, ShoppersResponse, error_responses
from api.services import services
from recsys.config import Settings
from recsys.services.auth import API_KEY_HEADER, AccessPolicy, Scope

STATIC_DIR = Path(__file__).resolve().parents[1] / "static" / "demo"


def page_config(settings: Settings) -> dict:
    """What the page's script needs from the configuration (embedded in the page as JSON)."""
    demo, serving = settings.demo, settings.serving
    return {"k": demo.k, "shoppers": demo.shoppers, "pollIntervalMs": demo.poll_interval_ms,
            "pollDurationS": demo.poll_duration_s, "statusRefreshS": demo.status_refresh_s,
            "maxSeenItems": serving.max_seen_items, "maxIds": serving.max_k, "keyHeader": API_KEY_HEADER}


def pages(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("demo", __name__, access, scope=None, description="the demo page (demo.enabled)")
    config = page_config(settings)

    @bp.get("/demo", responses={200: HTML_RESPONSE})
    def demo_page():
        """The demo page: pick a shopper or be a visitor, post views, carts and purchases, and watch the
        recommendations, trending and similar items change; the status panel shows model, variant and lag."""
        return render_template("demo.html", config=config)

    @bp.get("/demo/static/<name>", responses={200: ASSET_RESPONSE, **error_responses(404)})
    def demo_asset(path: AssetPath):
        """The page's script and style sheet."""
        return send_from_directory(STATIC_DIR, path.name)

    return bp


def api(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("demo_api", __name__, access, scope=Scope.READ, url_prefix="/v1/demo",
                            description="what the demo page needs besides the public endpoints")

    @bp.get("/shoppers", responses={200: ShoppersResponse})
    def shoppers():
        """Up to demo.shoppers user ids the served model knows: shoppers with a history to try the page with."""
        return jsonify({"shoppers": services().known_shoppers(settings.demo.shoppers)})

    return bp
