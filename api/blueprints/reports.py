"""GET /reports: the registry's model versions with their metrics and a comparison chart; GET /reports/<version>:
the HTML evaluation report the batch layer's gate wrote (storage.reports_root). Registered only when demo.enabled;
open (a browser sends no key)."""

from flask import Response, render_template
from flask_openapi3 import APIBlueprint

from api.blueprints import resource_blueprint
from api.errors import ApiError
from api.schemas import HTML_RESPONSE, VersionPath, error_responses
from api.services import services
from recsys.config import Settings
from recsys.reports.report_pages import (
    comparison_chart,
    find_version,
    metric_columns,
    report_page,
    version_summaries,
)
from recsys.services.auth import AccessPolicy


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("reports", __name__, access, scope=None,
                            description="model versions and their evaluation reports (demo.enabled)")
    k = settings.evaluation.k

    @bp.get("/reports", responses={200: HTML_RESPONSE})
    def reports_page():
        """Every registered model version (newest first) with status, gate decision and metrics, and a chart of
        the current version against its baselines and up to demo.report_versions - 1 versions before it."""
        summaries = version_summaries(services().registry())
        return render_template("reports.html", summaries=summaries, columns=metric_columns(summaries, k),
                               chart=comparison_chart(summaries, k, settings.demo.report_versions))

    @bp.get("/reports/<version>", responses={200: HTML_RESPONSE, **error_responses(404)})
    def version_report(path: VersionPath):
        """The version's evaluation report. 404 `unknown_version` when it is not registered, `report_not_found`
        when no report was written for it (a version that never went through the gate)."""
        summary = find_version(version_summaries(services().registry()), path.version)
        if summary is None:
            raise ApiError(404, "unknown_version", f"model version {path.version!r} is not registered")
        html = report_page(settings, summary)
        if html is None:
            raise ApiError(404, "report_not_found", f"no evaluation report for model version {path.version!r}")
        return Response(html, mimetype="text/html")

    return bp
