"""Logging filters used by settings.LOGGING (both the plain and the JSON format); the ones that keep
personal data out of logs are in nurture/log_redaction.py.

- ContextFilter adds the running Celery task's id and name (and a delivery id the caller passed as
  `extra={"delivery_id": ...}`) to every record, so JSON lines can be grouped by task.
- QuietPeriodicTasks lowers to DEBUG what the periodic tasks say every few seconds when there was
  nothing to do (Celery's "received" and "succeeded: 0" lines, beat's "Sending due task"), so
  `make run` shows the sign-ups and sends rather than the ticking of the clock.
"""
from __future__ import annotations

import logging
import re


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        task = _current_task()
        if task is not None and getattr(task.request, "id", None):
            record.task_id = task.request.id
            record.task_name = task.name
        return True


def _current_task():
    try:
        from celery._state import get_current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return None
    return get_current_task()


def periodic_task_names() -> set[str]:
    from nurture.services.schedule import PERIODIC_TASKS

    return {task for _name, task, _seconds in PERIODIC_TASKS}


NOTHING_DONE = re.compile(r"[^1-9]*")  # a return value with no non-zero digit: 0, {'planned': 0}, None


class QuietPeriodicTasks(logging.Filter):
    _names: set[str] | None = None

    def names(self) -> set[str]:
        if self._names is None:
            try:
                QuietPeriodicTasks._names = periodic_task_names()
            except Exception:  # apps not ready yet: decide again next time
                return set()
        return self._names or set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self.quiet(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    def quiet(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "celery.beat" and isinstance(args, tuple) and len(args) == 2:
            return args[1] in self.names()  # "Sending due task <name> (<task>)"
        if not isinstance(args, dict) or args.get("name") not in self.names():
            return False
        if "return_value" in args:  # "Task ... succeeded in 0.01s: <return value>"
            return bool(NOTHING_DONE.fullmatch(str(args["return_value"]).replace("True", "1")))
        return "eta" in args  # "Task ... received"


class WebhookAuthFailures(logging.Filter):
    """A provider-webhook call with wrong credentials is a misconfiguration or someone probing: a
    WARNING of one line. anymail raises a SuspiciousOperation for it, which Django logs at ERROR
    with the whole traceback, and an error-level record would page whoever watches errors (and
    reach Sentry) every time a stranger posts to the URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        record.stack_info = None
        return True
