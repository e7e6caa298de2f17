"""Fault runs on demand (run from the project root as a module, so its packages import): each infrastructure fault of
docs/scheduler.md's fault table, reproduced through real parts (two Celery workers over real Redis and PostgreSQL,
anymail's real Postmark backend against the fake Postmark on loopback answering in 30 ms), 3,000 deliveries a scenario.
Prints planned / accepted / duplicates / lost / settle time per scenario; asserts nothing.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/fault_nurture \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python -m scripts.fault_run [--emails 3000] [--only db-terminate,redis-restart,...]

Scenarios: db-terminate (pg_terminate_backend on the workers' sessions 4 times mid-send),
redis-restart (kill -9 a Redis without persistence this script owns, start it again; beat runs the
reconciler on its production schedule), provider-outage (HTTP 500 for 60 s; backoff 5 s doubling
to 20 s), periodic-backlog (20,000 queued, then a due subscriber and a confirmation: how long
they wait), withheld-answer (one answer withheld past EMAIL_TIMEOUT, then the provider's delivery
webhook). A scratch database is created and emptied between scenarios; the Redis db is flushed.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import tempfile
from pathlib import Path

from benchmarks.bench_planner import ensure_database, setup_django

SCENARIOS = ("db-terminate", "redis-restart", "provider-outage", "periodic-backlog", "withheld-answer")
SECRET = "fault-run:webhook-secret"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]

    db_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fault_nurture")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    ensure_database(db_url)
    os.environ["NURTURE_DAY_SECONDS"] = "86400"
    os.environ["ANYMAIL_WEBHOOK_SECRET"] = SECRET
    os.environ["EMAIL_BACKEND"] = "anymail.backends.postmark.EmailBackend"  # its webhook URL answers only then
    setup_django(db_url)

    import redis
    from django.core.management import call_command
    from django.test import Client

    from content.models import Article
    from nurture.models import Delivery, ProviderEvent, Series, Subscriber
    from nurture.services.schedule import periodic_tasks_ensure
    from support import fault_scenarios as fs
    from support.fake_provider import FakeProvider
    from support.redis_server import RedisServer
    from support.workers import use_broker_in_this_process

    call_command("migrate", verbosity=0)
    periodic_tasks_ensure()

    def clean(broker: str) -> None:
        ProviderEvent.objects.all().delete()
        Delivery.objects.all().delete()
        Subscriber.objects.all().delete()
        Series.objects.all().delete()
        Article.objects.filter(slug__startswith="fault-").delete()
        redis.Redis.from_url(broker).flushdb()

    def webhook(delivery, accepted):
        payload = {"RecordType": "Delivery", "MessageStream": "outbound", "ServerID": 1,
                   "MessageID": accepted.provider_message_id,
                   "Recipient": delivery.subscriber.email, "Tag": "", "DeliveredAt": "2026-11-27T10:00:00Z",
                   "Details": "",
                   "Metadata": {"delivery": str(delivery.pk)}}
        response = Client().post("/anymail/postmark/tracking/", data=json.dumps(payload),
                                 content_type="application/json",
                                 HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode())
        if response.status_code != 200:
            raise SystemExit(f"the webhook answered {response.status_code}")

    n = args.emails
    common = {"NURTURE_SEND_BATCH_SIZE": 50, "LOG_LEVEL": "WARNING"}
    print(f"fault runs: {n} deliveries a scenario, 2 workers, fake Postmark answering in 30 ms")
    for name in chosen:
        log_dir = Path(tempfile.mkdtemp(prefix=f"fault-{name}-"))
        clean(redis_url)
        with FakeProvider() as fake:
            fake.state.latency_seconds = 0.03
            if name == "redis-restart":
                with RedisServer(persistence=False) as server:
                    use_broker_in_this_process(server.url)
                    with fs.stack_for(fake, server.url, log_dir, NURTURE_SENDS_PER_SECOND=100, **common) as stack:
                        run = fs.scenario_redis_restart(stack, server, n=n, timeout=300)
            else:
                use_broker_in_this_process(redis_url)
                if name == "db-terminate":
                    with fs.stack_for(fake, redis_url, log_dir, NURTURE_SENDS_PER_SECOND=100, **common) as stack:
                        run = fs.scenario_db_terminate(stack, n=n, kills=4, every=1.0, timeout=300)
                elif name == "provider-outage":
                    with fs.stack_for(fake, redis_url, log_dir, NURTURE_SENDS_PER_SECOND=100,
                                      NURTURE_RETRY_BASE_SECONDS=5,
                                      NURTURE_RETRY_MAX_SECONDS=20, NURTURE_SEND_MAX_ATTEMPTS=12, **common) as stack:
                        run = fs.scenario_provider_outage(stack, n=n, outage=60, batch=50, timeout=300)
                elif name == "periodic-backlog":
                    with fs.stack_for(fake, redis_url, log_dir, NURTURE_SENDS_PER_SECOND=200, **common) as stack:
                        run = fs.scenario_periodic_backlog(stack, n=args.backlog, rate=200, timeout=120)
                elif name == "withheld-answer":
                    fake.state.timeout_seconds = 3.0
                    with fs.stack_for(fake, redis_url, log_dir, EMAIL_TIMEOUT=1, NURTURE_SENDS_PER_SECOND=100,
                                      **common) as stack:
                        run = fs.scenario_withheld_answer(stack, n=n, deliver_webhook=webhook, timeout=300)
                else:
                    raise SystemExit(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
        print(run.line(), flush=True)
        clean(redis_url)


if __name__ == "__main__":
    main()
