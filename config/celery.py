import gc
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("nurture")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

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
