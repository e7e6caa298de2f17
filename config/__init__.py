"""Project wiring: settings, environment getters and their system checks, URLs, WSGI and the Celery app.

Importing the settings imports this package, so the Celery app exists (and is the current app) and the
system checks on the settings are registered before anything else runs."""
from config import checks  # noqa: F401  (registers the system checks on the settings)
from config.celery import app as celery_app

__all__ = ("celery_app",)
