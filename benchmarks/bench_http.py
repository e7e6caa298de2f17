"""Benchmark: the public sign-up form through the production web server.

gunicorn (gunicorn.conf.py, the Dockerfile's command) on a free loopback port over real PostgreSQL
and Redis, with DEBUG off, behind a simulated TLS proxy (X-Forwarded-Proto: https). N parallel
clients (threads in this process, one keep-alive connection each) post the sign-up form with a new
address each time for S seconds. Prints requests per second, median and p99 latency, the status
codes, and the most database connections the server held (pg_stat_activity), next to the bound
NURTURE_WEB_WORKERS x NURTURE_WEB_THREADS.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_nurture_http \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python -m benchmarks.bench_http [--clients 32] [--seconds 30] [--workers 2] [--threads 4] [--path signup|healthz]

A scratch database is created and emptied; the Redis db is flushed (the confirmation tasks queue
there: no worker runs). The load generator shares the machine with the server, so the figures are
a floor for the server alone. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
from pathlib import Path

from benchmarks.bench_planner import ensure_database, setup_django

ROOT = Path(__file__).resolve().parent.parent

APP_NAME = "nurture-bench-http"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--path", choices=["signup", "healthz"], default="signup")
    args = parser.parse_args()

    db_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_nurture_http")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    ensure_database(db_url)
    setup_django(db_url)

    import psycopg
    import redis
    from django.core.management import call_command

    from nurture.models import Subscriber
    from support.web import WebServer, run_load, signup_form

    call_command("migrate", verbosity=0)
    Subscriber.objects.all().delete()
    redis.Redis.from_url(redis_url).flushdb()

    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "NURTURE_", "CELERY_", "EMAIL_", "ANYMAIL_", "DATABASE_"))
    }
    env.update({
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"{db_url}?application_name={APP_NAME}",
        "CELERY_BROKER_URL": redis_url,
        "DJANGO_SECRET_KEY": "bench-" + "x" * 50,
        "SITE_URL": "https://guide.example.org",
        "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        "NURTURE_WEB_WORKERS": str(args.workers),
        "NURTURE_WEB_THREADS": str(args.threads),
        "LOG_LEVEL": "WARNING",
        # One client address posts everything here: lift the per-client limit so each post is a sign-up.
        "NURTURE_SIGNUP_RATE": "1000000/h",
    })
    scenario = {"signup": signup_form} if args.path == "signup" else {"healthz": lambda n: ("GET", "/healthz", None)}

    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            while not done.wait(0.2):
                samples.append(conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)
                ).fetchone()[0])

    with tempfile.TemporaryDirectory() as tmp:
        server = WebServer(env, Path(tmp) / "gunicorn.log").start()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            run_load(server.url, scenario, clients=args.clients, seconds=3, headers={"X-Forwarded-Proto": "https"})  # warm-up
            result = run_load(
                server.url, scenario, clients=args.clients, seconds=args.seconds, headers={"X-Forwarded-Proto": "https"}
            )
        finally:
            done.set()
            sampler.join(timeout=5)
            server.stop()

    name = next(iter(scenario))
    print(f"{args.path}: {args.clients} clients for {result.seconds:.1f}s against gunicorn "
          f"{args.workers} workers x {args.threads} threads (cpu cores: {os.cpu_count()})")
    print(f"  requests/s: {result.rate(name):.1f}   median: {result.percentile(name, 50) * 1000:.0f} ms   "
          f"p99: {result.percentile(name, 99) * 1000:.0f} ms   max: {result.percentile(name, 100) * 1000:.0f} ms")
    print(f"  statuses: {dict(result.statuses)}   client errors: {dict(result.errors) or 'none'}")
    print(f"  database connections held by the server: max {max(samples, default=0)} "
          f"(bound {args.workers * args.threads})")


if __name__ == "__main__":
    main()
