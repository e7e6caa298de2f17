"""Shared fixtures. Tests that need PostgreSQL or Redis ask for `postgres` / `redis_url`: they skip
with a reason when the service is absent, and fail instead when NURTURE_REQUIRE_SERVICES=1 (CI)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.utils import translation

REQUIRE_SERVICES = os.environ.get("NURTURE_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(config, items):
    """Everything under tests/e2e/ starts real processes: mark it e2e, so `make test` runs it after the
    parallel part, one test at a time."""
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.e2e)


def pytest_runtest_setup(item):
    """The e2e tests' shared worker and beat (tests/e2e/conftest.py) stop before any other test runs."""
    shared = sys.modules.get("tests.e2e.conftest")
    if shared is not None:
        shared.before_test(item)


def service_missing(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (NURTURE_REQUIRE_SERVICES=1: a missing service is a failure)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _unit_defaults(settings, tmp_path):
    """Unit tests run Celery tasks eagerly and write emails to a private outbox."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True
    settings.NURTURE_OUTBOX_DIR = tmp_path / "outbox"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://guide.example.org"
    # The daytime send window is open all day in tests, so what a test plans never depends on the
    # hour the suite runs at (with the production 09-17 window, a test planning with real days and
    # the real clock defers everything between 17:00 and 09:00 UTC). Tests about the window set
    # its hours and pin the clock themselves (tests/nurture/planning/test_planner.py `real_days`).
    settings.NURTURE_SEND_WINDOW_START_HOUR = 0
    settings.NURTURE_SEND_WINDOW_END_HOUR = 24
    # Outside DEBUG the settings serve hashed files that only `collectstatic` writes; in-process
    # tests render pages (the admin's {% static %}) without it. The production smoke test runs it.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    # LocaleMiddleware leaves the last request's language active on this thread; start each test in English.
    translation.activate("en")
    # Rate limits, per-mailbox throttles and hourly ceilings count in the cache and in in-process
    # windows: every test starts with nothing counted.
    from django.core.cache import cache

    from nurture.services import throttle

    cache.clear()
    throttle.forget_in_process_limiters()
    yield
    translation.deactivate()
    app.conf.task_always_eager = False


@pytest.fixture
def fast_sending(settings):
    """Short days and retries, an in-process rate limit high enough never to wait (sending unit tests)."""
    settings.NURTURE_DAY_SECONDS = 10
    settings.NURTURE_RETRY_BASE_SECONDS = 1.0
    settings.NURTURE_RETRY_MAX_SECONDS = 4.0
    settings.NURTURE_SEND_MAX_ATTEMPTS = 3
    settings.CELERY_BROKER_URL = "filesystem://"  # in-process rate limit for these tests
    settings.NURTURE_SENDS_PER_SECOND = 1000.0
    # Each test starts as a fresh worker process would: it has heard nothing from the provider,
    # so its first batch probes with one call.
    from nurture.sending.calls import provider_health

    provider_health.forget()


@pytest.fixture
def postgres(db):
    if connection.vendor != "postgresql":
        service_missing("needs PostgreSQL: run `make test` with a server on 127.0.0.1:5432 or set DATABASE_URL")
    return connection


def _redis_url_for_this_worker(url: str) -> str:
    """Under pytest-xdist each worker gets its own Redis database (the base number counting down), as
    pytest-django gives each its own test database, so one worker's flushdb never empties another's broker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    return f"{base}/{(int(db or 0) - int(worker[2:])) % 16}"


@pytest.fixture
def redis_url():
    url = os.environ.get("NURTURE_TEST_REDIS_URL")
    if url:
        url = _redis_url_for_this_worker(url)
    if not url:
        service_missing("needs Redis: run `make test` with a server on 127.0.0.1:6379 or set NURTURE_TEST_REDIS_URL")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        service_missing(f"Redis at {url} does not answer")
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture(scope="module")
def module_transaction(django_db_setup, django_db_blocker):
    """A transaction around a module's tests, rolled back after the last of them: yields run(make),
    which calls make() inside it, for data that costs more to make than most tests take (the
    library). Each test's own transaction (pytest-django's `db`) is a savepoint inside it, so what
    a test writes is still undone after that test. Only for modules whose tests all use `db`,
    never `transactional_db` (which would empty the tables under it)."""
    from django.db import transaction

    outer = None

    def run(make):
        nonlocal outer
        with django_db_blocker.unblock():
            if outer is None:
                outer = transaction.atomic()
                outer.__enter__()
            return make()

    try:
        yield run
    finally:
        if outer is not None:
            with django_db_blocker.unblock():
                transaction.set_rollback(True)
                outer.__exit__(None, None, None)


@pytest.fixture(scope="module")
def default_library_for_module(module_transaction):
    """The default library (support/library.py, approved), once for the module (module_transaction)."""
    from support.library import load_default_library

    return module_transaction(load_default_library)


@pytest.fixture
def library_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "content" / "library"


@pytest.fixture(scope="session", autouse=True)
def _close_stray_test_database_sessions(django_db_setup, django_db_blocker):
    """PostgreSQL refuses to drop a test database that still has sessions. Live-server threads and
    killed worker processes can leave one behind; end them before pytest-django drops the database."""
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


# The headless Chromium fixture, for every test module (imported last: it reads REQUIRE_SERVICES above).
from tests.helpers.browser import browser  # noqa: E402,F401


@pytest.fixture
def admin_client(db, admin_user):
    """pytest-django's admin_client (a client of its own, not `client`), signed in with a verified
    TOTP device: with DEBUG off (as in tests) the admin lets in only staff verified by a second
    factor (config.admin_site)."""
    from django.test import Client

    from tests.helpers.staff import verified_login

    return verified_login(Client(), admin_user)
