#!/usr/bin/env bash
# Entry point of the recsys-api image (docker/api/Dockerfile): gunicorn with api/gunicorn_conf.py, which takes
# bind address, workers and the metrics folder from conf/ (serving.*). Extra arguments go to gunicorn.
# Without the open-mode opt-in (auth.open, loopback only) the API needs the keys of its scopes, RECSYS_READ_KEYS
# and the others of auth.scopes (docs/operations.md#the-api).
set -euo pipefail
cd "${RECSYS_HOME:?RECSYS_HOME is set by the image}"
exec gunicorn --config api/gunicorn_conf.py "$@" api.wsgi:app
