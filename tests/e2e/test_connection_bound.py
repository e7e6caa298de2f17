"""Database connections stay bounded under load: the real web server (gunicorn with
gunicorn.conf.py) on a free port over the real PostgreSQL and Redis, 32 parallel clients posting the
sign-up form and asking /healthz for 15 s. No 5xx, and the web server's connections to the database
(sampled from pg_stat_activity) never exceed NURTURE_WEB_WORKERS x NURTURE_WEB_THREADS.

A correctness check, not a timing test: benchmarks/bench_http.py measures speed."""
from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection

from nurture.models import SignupRequest
from support.web import WebServer, run_load, signup_form
from support.workers import database_url_for_subprocess, subprocess_env

pytestmark = [pytest.mark.e2e, pytest.mark.services]

WORKERS, THREADS = 2, 4
CLIENTS, SECONDS = 32, 15  # long enough for every thread of both workers to take requests
APP_NAME = "nurture-load-test"


class ConnectionSampler(threading.Thread):
    """Counts, every 0.2 s, the server's sessions on the test database (by application_name),
    from a connection of its own."""

    def __init__(self, dsn: str, database: str):
        super().__init__(daemon=True)
        self.dsn, self.database = dsn, database
        self.samples: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.done.wait(0.2):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                    (self.database, APP_NAME),
                ).fetchone()
                self.samples.append(row[0])


def test_32_clients_get_no_5xx_and_connections_stay_within_workers_times_threads(
    transactional_db, postgres, redis_url, tmp_path
):
    database_url = database_url_for_subprocess()
    env = subprocess_env(
        broker_url=redis_url,
        outbox_dir=tmp_path / "outbox",
        day_seconds=86400,
        extra={
            "DATABASE_URL": f"{database_url}?application_name={APP_NAME}",
            "DATABASE_CONN_MAX_AGE": "60",  # production's: connections are kept, so any leak would show
            "NURTURE_WEB_WORKERS": str(WORKERS),
            "NURTURE_WEB_THREADS": str(THREADS),
            "DJANGO_SECRET_KEY": "x" * 50,
            # Past the per-client sign-up limit every post would be a cheap 429: let them reach the database.
            "NURTURE_SIGNUP_RATE": "1000000/h",
            # As in production: https behind a TLS proxy that says so in X-Forwarded-Proto.
            "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        },
    )
    server = WebServer(env, tmp_path / "gunicorn.log").start()
    sampler = ConnectionSampler(database_url, connection.settings_dict["NAME"])
    sampler.start()
    try:
        result = run_load(
            server.url,
            {"signup": signup_form, "healthz": lambda n: ("GET", "/healthz", None)},
            clients=CLIENTS,
            seconds=SECONDS,
            headers={"X-Forwarded-Proto": "https"},
        )
    finally:
        sampler.done.set()
        sampler.join(timeout=10)
        server.stop()

    print(f"\n{result.requests} requests in {result.seconds:.1f}s: {dict(result.statuses)}; "
          f"server connections max {max(sampler.samples, default=0)} (bound {WORKERS * THREADS})")
    assert result.errors == {}, result.errors
    assert not [status for status in result.statuses if status >= 500], (dict(result.statuses), server.log()[-3000:])
    assert "Traceback" not in server.log(), server.log()[-3000:]
    # The sampler saw the server's connections, and never more than one per thread.
    assert len(sampler.samples) > SECONDS * 5 // 3  # sampled throughout (every 0.2 s at best)
    assert 1 <= max(sampler.samples) <= WORKERS * THREADS, sampler.samples
    # Both kinds of request were served throughout, and every accepted sign-up is stored (the form
    # stores the request; a worker, not running here, acts on it).
    assert len(result.latencies["signup"]) > CLIENTS and len(result.latencies["healthz"]) > CLIENTS
    # 200 for /healthz, 302 for a stored sign-up, 429 if the sign-up rate limit steps in.
    assert set(result.statuses) <= {200, 302, 429}, dict(result.statuses)
    assert SignupRequest.objects.count() == result.statuses[302]
