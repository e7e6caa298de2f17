"""Our own infrastructure failing under a send: which errors those are, and running a database write
again through a lost or broken connection. Every write of the ledger (nurture/sending/ledger.py)
is idempotent, so running one again cannot do anything twice."""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

DB_ERRORS = (OperationalError, InterfaceError)


def infrastructure_errors() -> tuple[type[BaseException], ...]:
    """Errors of our own infrastructure (database, Redis, the broker), never of the provider: a
    batch that meets one releases what it claimed and re-enqueues it."""
    import kombu.exceptions
    import redis.exceptions

    return (*DB_ERRORS, redis.exceptions.RedisError, kombu.exceptions.OperationalError, ConnectionRefusedError)


def _drop_connection() -> None:
    try:
        connection.close()
    except Exception:  # the connection is already gone; Django forgets it either way
        connection.connection = None


def with_db_retry(fn, *, what: str, attempts: int | None = None):
    """Run fn(); on a lost or broken database connection, reconnect and run it again, with backoff
    (0.1 s, 0.3 s, 0.9 s ... capped at 5 s), NURTURE_DB_RETRY_ATTEMPTS times in all. fn must be
    idempotent. Raises the last error when they are used up."""
    attempts = attempts or settings.NURTURE_DB_RETRY_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DB_ERRORS as exc:
            if connection.in_atomic_block or attempt == attempts:
                raise
            delay = min(5.0, 0.1 * 3 ** (attempt - 1))
            logger.warning("database error during %s (attempt %d/%d, retrying in %.1fs): %s", what, attempt, attempts,
                           delay, type(exc).__name__)
            _drop_connection()
            time.sleep(delay)
