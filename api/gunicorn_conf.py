"""gunicorn settings from conf/ (serving.*)."""

from recsys.config import get_settings

_serving = get_settings().serving
bind = f"{_serving.host}:{_serving.port}"
workers = _serving.workers
worker_class = "gthread"
threads = 4
timeout = 30
accesslog = "-"
