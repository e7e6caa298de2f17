"""A worker process keeps its database connection between tasks as a web thread keeps it between
requests (config/celery.py): Celery's Django fix-up would otherwise close it around every task, so
each send task opened a new PostgreSQL backend."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from config.celery import app, database_connection_kept_or_closed

WORKER_TASK = SimpleNamespace(request=SimpleNamespace(is_eager=False))
EAGER_TASK = SimpleNamespace(request=SimpleNamespace(is_eager=True))


def test_celery_s_fix_up_does_not_close_the_connection_around_each_task():
    fixup = DjangoWorkerFixup(app)
    assert fixup.db_reuse_max >= 100_000
    # What it would do otherwise: close on every task. With the reuse count, only every 2 x that many.
    closed = []
    fixup._close_database = lambda: closed.append(True)
    for _ in range(1000):
        fixup.close_database()
    assert closed == []


def test_the_connection_is_checked_around_each_task_run_by_a_worker():
    assert any(receiver() is database_connection_kept_or_closed for _key, receiver in task_prerun.receivers
               if callable(receiver))
    assert any(receiver() is database_connection_kept_or_closed for _key, receiver in task_postrun.receivers
               if callable(receiver))


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_connection_until_it_is_too_old_and_eager_tasks_leave_it_alone(settings):
    connection.ensure_connection()
    connection.close_at = time.monotonic() + 60  # DATABASE_CONN_MAX_AGE=60, as deployed
    raw = connection.connection
    database_connection_kept_or_closed(sender=WORKER_TASK)
    assert connection.connection is raw  # kept for the next task
    connection.close_at = time.monotonic() - 1  # outlived its age (DATABASE_CONN_MAX_AGE=0: every task)
    database_connection_kept_or_closed(sender=EAGER_TASK)
    assert connection.connection is raw  # an eager task runs inside its caller: never closed under it
    database_connection_kept_or_closed(sender=WORKER_TASK)
    assert connection.connection is None
    connection.ensure_connection()
    connection.close_at = time.monotonic() + 60
    connection.errors_occurred = True  # an error: reused only if it still answers
    raw = connection.connection
    database_connection_kept_or_closed(sender=WORKER_TASK)
    assert connection.connection is raw and not connection.errors_occurred
