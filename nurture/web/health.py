"""Liveness of the parts the service needs: the database and the Celery broker."""
from __future__ import annotations

from django.db import connection
from django.http import JsonResponse

from celery import current_app as celery_app  # the project app (config.celery), current once settings load


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0] == 1
    except Exception:
        return False


def broker_ok(timeout: float = 2.0) -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            return True
    except Exception:
        return False


def healthz(request):
    checks = {"database": database_ok(), "broker": broker_ok()}
    failing = [name for name, ok in checks.items() if not ok]
    body = {"status": "ok" if not failing else "unavailable",
            "checks": {k: ("ok" if v else "unreachable") for k, v in checks.items()}}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
