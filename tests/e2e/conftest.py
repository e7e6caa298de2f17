"""One Celery worker and beat for the end-to-end tests that only sign people up and watch what
arrives: real processes over the real Redis and PostgreSQL, started once for the run and shared
(`live_stack`), instead of a worker and beat per test or per module.

- A series "day" is one second; the bereavement-support line is set; check-ins go every 7 "days"
  to people in remission only (the other tests sign people up at other stages).
- The starter library is loaded and approved once, as an operator does (with DEBUG off only
  reviewed text is sent), and beat's schedule is in the database.
- Before each test the people, their emails (the outbox) and what the worker's rate limits counted
  are cleared; the library and the schedule stay. After each test, neither process may have
  logged a traceback while it ran.
- The tests that use it run first and together; the stack is stopped, and the database flushed,
  before any other test (the ones that start, kill or restart workers of their own, or need other
  settings, keep their own processes: faults, scheduler, batch, real days, make run, production).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

DAY_SECONDS = 1
BEREAVEMENT_SUPPORT = "Bereavement support line: 0800 000 1111"
WORKER_ENV = {
    "NURTURE_BEREAVEMENT_SUPPORT": BEREAVEMENT_SUPPORT,
    "NURTURE_CHECKIN_WEEKS": "in_remission:1",  # check-ins every 7 one-second "days", in remission only
}
SHARED = "live_stack"


def pytest_collection_modifyitems(config, items):
    """The tests on the shared stack first and together (stable: each keeps its place among them),
    so it is started once and stopped before any test that starts processes of its own."""
    items.sort(key=lambda item: SHARED not in getattr(item, "fixturenames", ()))


def before_test(item) -> None:
    """Called for every test (tests/conftest.py pytest_runtest_setup, which sees tests outside this
    folder too): the shared stack stops before the first test that does not use it."""
    if SHARED not in getattr(item, "fixturenames", ()):
        _SharedStack.close_open()


class _SharedStack:
    """The worker and beat, and how to put the database back as it was when they stop."""

    current: "_SharedStack | None" = None

    def __init__(self, processes, outbox: Path, url: str, django_db_blocker):
        self.processes, self.outbox, self.url, self.blocker = processes, outbox, url, django_db_blocker
        self.closed = False

    @classmethod
    def close_open(cls) -> None:
        if cls.current is not None:
            cls.current.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        _SharedStack.current = None
        from django.core.management import call_command

        from support.workers import stop_all

        stop_all(self.processes)
        with self.blocker.unblock():  # the next tests start from an empty database, as after any transactional test
            call_command("flush", interactive=False, verbosity=0)
        _redis(self.url).flushdb()


def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2)


@pytest.fixture(scope="session")
def _test_database(django_db_setup, django_db_blocker):
    """pytest-django makes the test database only when some test of the run asks for it (a mark or
    a database fixture); the shared stack's tests cannot (their rows must be committed, and stay
    between tests, for the worker to see them), so when no other test asked, it is made here."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    if connection.settings_dict["NAME"] == connection.creation._get_test_db_name():
        yield
        return
    with django_db_blocker.unblock():
        made = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            teardown_databases(made, verbosity=0)


@pytest.fixture(scope="session")
def _shared_stack(_test_database, django_db_blocker, tmp_path_factory):
    from django.core.management import call_command
    from django.db import connection
    from django.test import override_settings

    from support.workers import CeleryProcess, subprocess_env
    from tests.conftest import _redis_url_for_this_worker, service_missing

    url = _redis_url_for_this_worker(os.environ.get("NURTURE_TEST_REDIS_URL", ""))
    if not url:
        service_missing("needs Redis: run `make test` with a server on 127.0.0.1:6379 or set NURTURE_TEST_REDIS_URL")
    client = _redis(url)
    try:
        client.ping()
    except Exception:  # noqa: BLE001 - any failure to reach it is "missing"
        service_missing(f"Redis at {url} does not answer")
    client.flushdb()
    tmp = tmp_path_factory.mktemp("live-stack")
    outbox = tmp / "outbox"
    with django_db_blocker.unblock(), override_settings(NURTURE_DAY_SECONDS=DAY_SECONDS, NURTURE_OUTBOX_DIR=outbox):
        if connection.vendor != "postgresql":
            service_missing("needs PostgreSQL: run `make test` with a server on 127.0.0.1:5432 or set DATABASE_URL")
        call_command("load_content", verbosity=0)
        # The operator's step before production sends the starter library (README, "Approving the starter library").
        from support.library import sample_reviewer

        call_command("approve_articles", "--reviewer", sample_reviewer().get_username(), stdout=io.StringIO())
        from nurture.services.schedule import periodic_tasks_ensure

        periodic_tasks_ensure()
        env = subprocess_env(broker_url=url, outbox_dir=outbox, day_seconds=DAY_SECONDS, extra=WORKER_ENV)
        processes = [CeleryProcess("worker", "live-worker", env, tmp), CeleryProcess("beat", "live-beat", env, tmp)]
    stack = _SharedStack(processes, outbox, url, django_db_blocker)
    _SharedStack.current = stack
    try:
        for process in processes:
            process.start()
        yield stack
    finally:
        stack.close()


def _quiet_and_empty(stack: _SharedStack) -> None:
    """Nobody left to send to, nothing in flight, then the people and all that hangs on them gone,
    the outbox emptied and the worker's rate-limit counts forgotten."""
    from django.contrib.auth import get_user_model

    from nurture.models import Delivery, Feedback, ProviderEvent, Reply, SignupRequest, Subscriber, Suppression
    from support.library import REVIEWER_USERNAME
    from support.workers import wait_for

    Subscriber.objects.update(status=Subscriber.Status.UNSUBSCRIBED, next_send_at=None)
    try:  # a delivery a test made by hand and never queued stays "queued": then go on after a while
        wait_for(lambda: not Delivery.objects.filter(status__in=("queued", "sending")).exists(), timeout=10,
                 message="the shared worker to finish what was in flight")
    except TimeoutError:
        pass
    for model in (Reply, Feedback, ProviderEvent, Suppression, SignupRequest, Subscriber):  # (the audit trail is append-only)
        model.objects.all().delete()
    get_user_model().objects.exclude(username=REVIEWER_USERNAME).delete()
    for message in stack.outbox.glob("*") if stack.outbox.is_dir() else ():
        message.unlink()
    client = _redis(stack.url)
    for key in client.scan_iter(match="*nurture-cache*"):
        client.delete(key)


@pytest.fixture
def live_stack(_shared_stack, django_db_blocker, settings) -> Path:
    """The shared worker and beat, for one test: yields the outbox their emails land in (this
    process's own emails land there too). The test process publishes to the real broker."""
    from support.workers import use_broker_in_this_process

    stack = _shared_stack
    settings.NURTURE_DAY_SECONDS = DAY_SECONDS
    settings.NURTURE_OUTBOX_DIR = stack.outbox
    settings.EMAIL_BACKEND = "nurture.mail.OutboxEmailBackend"
    settings.NURTURE_BEREAVEMENT_SUPPORT = BEREAVEMENT_SUPPORT
    use_broker_in_this_process(stack.url)  # each test's defaults turned eager mode on
    with django_db_blocker.unblock():
        _quiet_and_empty(stack)
        logged = {process.name: len(process.log()) for process in stack.processes}
        yield stack.outbox
        for process in stack.processes:
            assert "Traceback" not in process.log()[logged[process.name]:], process.log()[-3000:]
