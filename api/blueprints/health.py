"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, jsonify

from api.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    svc = services()
    model = svc.models.get()
    checks = {
        "model": {"ok": model is not None, "version": model.version if model else None,
                  "error": svc.models.last_error},
        "redis": {"ok": svc.online.ping()},
        "kafka": {"ok": svc.sink.ping()},
    }
    ready = all(c["ok"] for c in checks.values())
    return jsonify({"ready": ready, "env": svc.settings.env, "checks": checks}), 200 if ready else 503
