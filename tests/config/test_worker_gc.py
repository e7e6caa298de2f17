"""Worker processes tune Python's collector once loaded (config/celery.py): a test that fails if the
signal handler stops being connected or stops tuning."""
import gc

from celery.signals import worker_process_init

from config import celery as celery_config


def test_a_worker_process_freezes_what_it_loaded_and_collects_young_objects_less_often():
    threshold = gc.get_threshold()
    try:
        gc.unfreeze()
        worker_process_init.send(sender=None)  # what Celery sends in each new worker process
        assert gc.get_freeze_count() > 10_000  # Django, the models, the tasks: out of the collector's view
        assert gc.get_threshold() == (celery_config.WORKER_GC_YOUNG_THRESHOLD, threshold[1], threshold[2])
        assert celery_config.WORKER_GC_YOUNG_THRESHOLD > threshold[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
