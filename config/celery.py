import gc
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("nurture")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fix-up closes the database connection before and after every task unless this
# says how many tasks may reuse it (it then closes it every 2 x this many). Each send task of 500
# emails opened a new PostgreSQL backend, whose catalog caches start cold (docs/benchmarks.md).
# A worker process keeps its connection as a web thread does between requests instead:
# database_connection_kept_or_closed below.
app.conf.CELERY_DB_REUSE_MAX = 1_000_000


@task_prerun.connect
@task_postrun.connect
def database_connection_kept_or_closed(sender=None, **_kwargs) -> None:
    """Around each task run by a worker, as Django does around each request: the connection is
    closed if it outlived DATABASE_CONN_MAX_AGE (0: after every task), if an error left it unusable
    or its transaction state unrestored; otherwise kept, and checked before reuse
    (CONN_HEALTH_CHECKS). Eager tasks (the unit tests) run inside the caller's transaction: left alone."""
    from django.db import close_old_connections

    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()

# A worker process's young collections run every this many allocations (Python's default: 700).
WORKER_GC_YOUNG_THRESHOLD = 10_000


@worker_process_init.connect
def worker_process_gc_tuned(**_kwargs) -> None:
    """In each worker process, once Django and the tasks are loaded: the objects that live as long
    as the process (about 400,000: modules, models, URL patterns) leave the collector's view, and
    young collections run less often. Sending allocates many short-lived objects per email across
    64 threads; with Python's defaults, the collector re-scanned the long-lived objects in every
    full collection and ran about 140 young collections per 1,000 emails, about a tenth of a
    worker's CPU (docs/benchmarks.md). Cycles are still collected: full collections now scan only
    what the process made after it started."""
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(WORKER_GC_YOUNG_THRESHOLD, middle, old)
