"""Benchmark: sending under load through real parts.

Real Celery worker processes over real Redis and PostgreSQL send N planned deliveries with
anymail's real Postmark backend (one API call per email), or with --provider mailgun its real
Mailgun backend and the batch endpoint (docs/scheduler.md), to the fake provider on 127.0.0.1
(support/fake_provider.py), under
the shared sends-per-second ceiling. Prints throughput, the busiest one-second window seen by the
provider (must not exceed the ceiling), per-email latency, whether every email was accepted exactly
once, and the workers' peak memory.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_nurture_send \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python -m benchmarks.bench_send [--emails 2000] [--workers 2] [--rate 100] [--provider mailgun]

A scratch database is created and emptied; the Redis db is flushed. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.bench_planner import ensure_database, setup_django
from benchmarks.measure import peak_rss_mib


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--provider", choices=["postmark", "mailgun"], default="postmark")
    args = parser.parse_args()

    db_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_nurture_send")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    ensure_database(db_url)
    os.environ["NURTURE_DAY_SECONDS"] = "60"
    setup_django(db_url)

    import redis
    from django.core.management import call_command
    from django.utils import timezone

    from nurture.models import Delivery, Series, Subscriber
    from nurture.services import planning
    from nurture.tasks import enqueue_send_batches
    from support.fake_provider import FakeMailgun, FakeProvider
    from support.workers import CeleryProcess, subprocess_env, use_broker_in_this_process

    call_command("migrate", verbosity=0)
    Delivery.objects.all().delete()
    Subscriber.objects.all().delete()
    call_command("load_content", verbosity=0)
    from content.services import articles_approve  # with DEBUG off only approved text is sent
    from support.library import sample_reviewer

    articles_approve(user=sample_reviewer())
    redis.Redis.from_url(redis_url).flushdb()

    series = Series.objects.get(stage="in_treatment", language="en")
    now = timezone.now()
    Subscriber.objects.bulk_create(
        Subscriber(
            email=f"load{i}@example.org", stage="in_treatment", language="en", status="active",
            series=series, next_send_at=now, confirmed_at=now,
        )
        for i in range(args.emails)
    )
    planned: list[int] = []
    planning.deliveries_plan_due(now=now, enqueue=planned.extend)
    print(f"planned {len(planned)} deliveries for {args.emails} subscribers")

    use_broker_in_this_process(redis_url)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-send-"))
    with (FakeMailgun() if args.provider == "mailgun" else FakeProvider()) as provider:
        env = subprocess_env(
            broker_url=redis_url, outbox_dir=log_dir / "outbox", day_seconds=60,
            extra={**provider.anymail_env(), "NURTURE_SENDS_PER_SECOND": str(args.rate),
                   "NURTURE_SEND_BATCH_SIZE": str(args.batch), "LOG_LEVEL": "WARNING"},
        )
        workers = [CeleryProcess("worker", f"bench{i}", env, log_dir) for i in range(args.workers)]
        for worker in workers:
            worker.start()
        try:
            started = time.monotonic()
            enqueue_send_batches(planned)
            deadline = started + max(120.0, 4 * len(planned) / args.rate)
            while time.monotonic() < deadline:
                if Delivery.objects.filter(status="sent").count() == len(planned):
                    break
                time.sleep(0.25)
            elapsed = time.monotonic() - started
            rss = [peak_rss_mib(w.proc.pid) for w in workers]
        finally:
            for worker in workers:
                worker.stop()

        stamps = sorted(provider.state.request_times)
        sent = Delivery.objects.filter(status="sent").count()
        counts = provider.state.acceptances_by_message_id()
        duplicates = sum(1 for c in counts.values() if c > 1)
        api_calls = len(provider.state.calls) if args.provider == "mailgun" else len(provider.state.requests)

    busiest = 0
    if stamps:
        j = 0
        for i, t in enumerate(stamps):
            while stamps[j] < t - 1.0:
                j += 1
            busiest = max(busiest, i - j + 1)
    print(f"provider={args.provider} workers={args.workers} ceiling={args.rate:g}/s batch={args.batch}")
    print(f"sent {sent}/{len(planned)} in {elapsed:.2f}s = {sent / elapsed:.1f} emails/s")
    if stamps:
        print(f"busiest one-second window of emails arriving at the provider: {busiest} (ceiling {int(args.rate)})")
    print(f"provider API calls: {api_calls} for {sent} emails")
    print(f"provider acceptances: {sum(counts.values())}, message ids accepted more than once: {duplicates}")
    print("worker peak RSS (main + pool): " + ", ".join(f"{r:.0f} MiB" for r in rss))


if __name__ == "__main__":
    main()
