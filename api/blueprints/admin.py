"""POST /v1/admin/models/<version>/activate: roll the served model back or forward."""

from flask import jsonify
from flask_openapi3 import APIBlueprint

from api.blueprints import resource_blueprint
from api.errors import ApiError, unavailable
from api.schemas import COMMIT_CONFLICT_RESPONSE, ActivateResponse, VersionPath, error_responses
from api.services import services
from recsys.config import Settings
from recsys.services.auth import AccessPolicy, Scope
from recsys.stores.delta_rs import CommitConflictError
from recsys.stores.registry_store import RejectedVersionError, UnknownVersionError, activate_version


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("admin", __name__, access, scope=Scope.ADMIN, url_prefix="/v1/admin",
                            description="operating the served model")

    @bp.post("/models/<version>/activate",
             responses={200: ActivateResponse, **error_responses(400, 404, 409), 503: COMMIT_CONFLICT_RESPONSE})
    def activate_model(path: VersionPath):
        """Make a registered version the current model (as `make rollback`), in one registry commit.

        This worker serves it from the next request; the others within serving.model_refresh_s.
        404 `unknown_version`: not registered or without factors; 409 `version_rejected`: it has not passed
        the gate (rejected, a candidate, or still training): only approved or published versions are activated.
        """
        svc = services()
        try:
            previous, current = activate_version(svc.settings, path.version)
        except RejectedVersionError as exc:
            raise ApiError(409, "version_rejected", str(exc)) from exc
        except UnknownVersionError as exc:
            raise ApiError(404, "unknown_version", str(exc)) from exc
        except CommitConflictError as exc:
            raise unavailable("commit_conflict", str(exc)) from exc
        svc.models.refresh()
        return jsonify({"previous": previous, "current": current})

    return bp
