"""gunicorn entry point: `gunicorn api.wsgi:app`.

The BLAS thread variables are set before the app (and numpy with it) is imported; gunicorn's master has
already set them for its workers (api/gunicorn_conf.py), this covers any other WSGI server.
"""

from recsys.config import get_settings
from recsys.serving.blas_threads import limit_blas_threads

limit_blas_threads(get_settings().serving.blas_threads)

from api import create_app  # noqa: E402  (after the BLAS limit: numpy reads it when it loads)

app = create_app()
