#!/usr/bin/env bash
# Entry point of the recsys-api image (docker/api/Dockerfile): gunicorn with api/gunicorn_conf.py, which takes
# bind address, workers and the metrics folder from conf/ (serving.*). Extra arguments go to gunicorn.
# Outside the local and test environments the API needs RECSYS_API_KEYS (docs/operations.md#the-api).
set -euo pipefail
cd "${RECSYS_HOME:?RECSYS_HOME is set by the image}"
exec gunicorn --config api/gunicorn_conf.py "$@" api.wsgi:app
