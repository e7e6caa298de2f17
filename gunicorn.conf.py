"""gunicorn's configuration: `gunicorn --config gunicorn.conf.py config.wsgi` (Dockerfile, compose).

Sizes come from the Django settings (environment variables NURTURE_WEB_WORKERS, NURTURE_WEB_THREADS,
NURTURE_WEB_BIND, NURTURE_WEB_TIMEOUT; README "Configuration"), so there is one place to read them
and the database-connection formula in docs/operations.md uses the same numbers.

gthread workers: WORKERS processes x THREADS threads. A thread serves one request at a time and
keeps at most one database connection, so the web server never holds more than WORKERS x THREADS.
Requests beyond that wait in the listen backlog instead of opening more connections.
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings  # noqa: E402  (reads the settings module only; no app loading)

wsgi_app = "config.wsgi:application"
bind = [settings.NURTURE_WEB_BIND]
worker_class = "gthread"
workers = settings.NURTURE_WEB_WORKERS
threads = settings.NURTURE_WEB_THREADS
timeout = settings.NURTURE_WEB_TIMEOUT
graceful_timeout = settings.NURTURE_WEB_TIMEOUT
keepalive = 5
# Recycle workers now and then (a slow leak cannot grow for ever); jitter so they do not all restart at once.
max_requests = 5000
max_requests_jitter = 500
# No access log: request paths carry personal link tokens. Errors go to stderr in the app's format.
accesslog = None
errorlog = "-"
loglevel = settings.LOG_LEVEL.lower()
logconfig_dict = {
    **settings.LOGGING,
    "loggers": {
        **settings.LOGGING.get("loggers", {}),
        "gunicorn.error": {"handlers": ["console"], "level": settings.LOG_LEVEL, "propagate": False},
    },
}
# The container's /tmp may be a slow overlay; the heartbeat file lives in memory.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn's runtime control socket (in the user's home by default) is not used; several servers
# on one machine would otherwise share its path.
control_socket_disable = True
