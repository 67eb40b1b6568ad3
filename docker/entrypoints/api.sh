#!/usr/bin/env bash
# Entry point of the recsys-api image (docker/api/Dockerfile): the HTTP server of api/server.py (granian), which takes
# bind address, workers, threads and the metrics folder from conf/ (serving.*, overridable by RECSYS__SERVING__*).
# Without the open-mode opt-in (auth.open, loopback only) the API needs the keys of its scopes, RECSYS_READ_KEYS
# and the others of auth.scopes (docs/operations.md#the-api).
set -euo pipefail
cd "${RECSYS_HOME:?RECSYS_HOME is set by the image}"
exec python -m api.server
