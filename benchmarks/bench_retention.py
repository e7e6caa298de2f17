"""Benchmark: the daily purge (services/retention.py) on a large backlog.

Fills a scratch PostgreSQL database with active subscribers plus people who unsubscribed long ago
(each with a consent record and two deliveries, one of them with a provider event), and old
provider events, then runs the real `expired_data_purge` and prints wall time, SQL queries, peak
Python memory and what it deleted, for a backlog and for ten times that backlog (time should grow
about tenfold, memory should not: batches are bounded).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_nurture_retention \\
        .venv/bin/python -m benchmarks.bench_retention [--active 100000] [--expired 5000]

Prints figures; asserts nothing. The scratch database's tables are emptied at the end.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

from benchmarks.bench_planner import ensure_database, setup_django


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE nurture_providerevent, nurture_delivery, nurture_consentrecord, nurture_subscriber RESTART IDENTITY CASCADE"
        )


def fill(*, active: int, expired: int, step_ids: list[int]) -> None:
    from django.db import connection

    subscriber = (
        "INSERT INTO nurture_subscriber (email, first_name, stage, language, time_zone, cadence, status, "
        "next_step_position, created_at, unsubscribed_at) "
        "SELECT %(prefix)s || g || '@example.org', 'Bench', 'in_treatment', 'en', 'UTC', 'as_planned', %(status)s, 0, "
        "now() - interval '400 days', %(left)s FROM generate_series(1, %(n)s) g"
    )
    with connection.cursor() as cursor:
        cursor.execute(subscriber, {"prefix": "active", "status": "active", "left": None, "n": active})
        cursor.execute(subscriber, {"prefix": "left", "status": "unsubscribed", "left": "2020-01-01T00:00:00Z", "n": expired})
        cursor.execute(
            "INSERT INTO nurture_consentrecord (subscriber_id, consent_text, language, given_at) "
            "SELECT id, 'I agree.', 'en', now() - interval '400 days' FROM nurture_subscriber"
        )
        for position, step_id in enumerate(step_ids[:2]):
            cursor.execute(
                "INSERT INTO nurture_delivery (subscriber_id, step_id, status, article_versions, message_id, "
                "provider_message_id, attempts, failure_reason, queued_at) "
                "SELECT id, %s, 'sent', '{}', '', 'pm-' || id || '-' || %s, 1, '', now() FROM nurture_subscriber",
                [step_id, position],
            )
        cursor.execute(
            "INSERT INTO nurture_providerevent (provider, event_id, event_type, delivery_id, provider_message_id, "
            "reject_reason, description, suppressed_address, timestamp, received_at) "
            "SELECT 'postmark', 'ev-' || id, 'delivered', id, provider_message_id, '', '', false, now(), "
            "CASE WHEN id % 2 = 0 THEN now() - interval '200 days' ELSE now() END "
            "FROM nurture_delivery WHERE provider_message_id LIKE '%-0'"
        )
        for table in ("nurture_subscriber", "nurture_consentrecord", "nurture_delivery", "nurture_providerevent"):
            cursor.execute(f"ANALYZE {table}")


def run(label: str, *, active: int, expired: int, step_ids: list[int]) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from nurture.models import Subscriber
    from nurture.services import retention

    reset()
    fill(active=active, expired=expired, step_ids=step_ids)
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = retention.expired_data_purge()
        seconds = time.perf_counter() - started
    left = Subscriber.objects.count()
    # Peak Python memory in a second run over a fresh backlog (tracemalloc slows what it watches).
    reset()
    fill(active=active, expired=expired, step_ids=step_ids)
    tracemalloc.start()
    retention.expired_data_purge()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{label:<26} active={active:>8,} expired={expired:>7,} deleted: subscribers={result.unsubscribed_subscribers:>7,} "
        f"events={result.provider_events:>7,} | time={seconds:7.3f}s queries={len(queries):>5} "
        f"peak_py_mem={peak / 2**20:5.1f}MiB ({1000 * seconds / max(1, expired):.3f} ms/subscriber) kept={left:,}",
        flush=True,
    )
    return {"seconds": seconds, "peak": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--active", type=int, default=100_000)
    parser.add_argument("--expired", type=int, default=5_000)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_nurture_retention")
    if not url.startswith("postgres"):
        print("bench_retention needs PostgreSQL (BENCH_DATABASE_URL=postgres://...)", file=sys.stderr)
        return 2
    ensure_database(url)
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from nurture.models import Series, Step

    series, _ = Series.objects.get_or_create(stage="in_treatment", language="en", defaults={"name": "bench"})
    for position in range(2):
        Step.objects.get_or_create(series=series, position=position, defaults={"delay_days": 3, "subject": f"Bench {position}"})
    step_ids = list(series.steps.order_by("position").values_list("id", flat=True))
    print(f"retention benchmark on {url.rsplit('@', 1)[-1]}, batch size 500")
    a = run("A. backlog", active=args.active, expired=args.expired, step_ids=step_ids)
    b = run("B. 10x backlog", active=args.active, expired=args.expired * 10, step_ids=step_ids)
    print(f"B/A time ratio {b['seconds'] / a['seconds']:.2f} (backlog x10); peak memory B/A {b['peak'] / max(1, a['peak']):.2f}")
    reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
