"""Benchmark: the results page (/admin/nurture/results/) on real volumes.

Fills a scratch PostgreSQL database (generate_series INSERTs, not the ORM) with subscribers across
six series (3 stages x 2 languages, 10 steps each), deliveries sent over the last year (one per
subscriber and step), provider events (delivered 30%, opened 10%, bounced 1%, complained 0.1% of
deliveries) and 5% of people unsubscribing a few days after their last email. Then it times:

- the summary's first run (every day since the first email) and its hourly run (recent days),
  i.e. services/results.results_summarise, which the beat task "nurture.results_summarise" runs;
- every results page a staff member can ask for: each series x period (7d, 30d, 90d, quarter,
  a custom 365 days), as the page and as CSV, through Django's test client (the real view,
  templates and charts), printing the slowest and median time and the queries per page.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_nurture_results \\
        .venv/bin/python -m benchmarks.bench_results [--subscribers 1000000] [--deliveries 10000000] [--keep]

Smaller sizes by flag (e.g. --subscribers 100000 --deliveries 1000000). --keep leaves the filled
database for another run (--reuse skips the fill). Prints figures; asserts nothing.

Measured 2026-11-27 on the shared 2-core test machine (load average 6 to 10 from other work),
PostgreSQL 15, 1,000,000 subscribers, 10,000,000 deliveries, 4,110,000 provider events, 50,000
unsubscribed; summary 19,860 rows (60 steps x 331 days):

    fill (generate_series)                                   about 21 minutes
    summary, first run (every day since the first email)     106.4 s
    summary, hourly run (the recent days only)                 3.2 s
    results pages as html: 30 pages, median  83.0 ms, slowest 181.5 ms (a custom 365 days), 11 queries per page
    results pages as csv : 30 pages, median  44.3 ms, slowest 135.0 ms (a custom 365 days), 10 queries per page
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from benchmarks.bench_planner import ensure_database, setup_django

STAGES = ("recently_diagnosed", "in_treatment", "in_remission")
LANGUAGES = ("en", "es")
STEPS_PER_SERIES = 10
PERIODS = [{"period": "7d"}, {"period": "30d"}, {"period": "90d"}, {"period": "quarter"}]


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE nurture_stepdailyresults, nurture_providerevent, nurture_delivery, nurture_consentrecord, "
            "nurture_subscriber RESTART IDENTITY CASCADE"
        )


def make_series() -> list[list[int]]:
    """Six series of STEPS_PER_SERIES steps; the step ids of each, by position; series i is for
    stage STAGES[i // 2] in language LANGUAGES[i % 2] (as the fill's g % 6)."""
    from nurture.models import Series, Step

    steps = []
    for stage in STAGES:
        for language in LANGUAGES:
            series, _ = Series.objects.get_or_create(stage=stage, language=language, defaults={"name": f"Bench {stage} {language}"})
            for position in range(STEPS_PER_SERIES):
                Step.objects.get_or_create(series=series, position=position, defaults={"delay_days": 3, "subject": f"Bench step {position + 1}"})
            steps.append(list(series.steps.order_by("position").values_list("id", flat=True)))
    return steps


def timed(label: str, fn):
    started = time.perf_counter()
    result = fn()
    print(f"  {label:<58} {time.perf_counter() - started:8.1f}s", flush=True)
    return result


def fill(*, subscribers: int, deliveries: int, steps: list[list[int]]) -> None:
    from django.db import connection

    from nurture.models import Step

    per_person = max(1, min(STEPS_PER_SERIES, round(deliveries / subscribers)))
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        # Person g is in series g % 6 (stage (g % 6) / 2, language g % 2); step k of that series went
        # out (per_person - 1 - k) * 3 days after a start spread over the last 330 days ((g / 6) % 330,
        # so every series has people starting on every day).
        series_ids = [Step.objects.get(pk=steps[i][0]).series_id for i in range(6)]
        timed(f"insert {subscribers:,} subscribers", lambda: cursor.execute(
            "INSERT INTO nurture_subscriber (email, first_name, stage, language, time_zone, cadence, status, series_id, "
            "next_step_position, created_at, confirmed_at) "
            "SELECT 'bench' || g || '@example.org', '', (%s::text[])[1 + (g %% 6) / 2], (%s::text[])[1 + g %% 2], 'UTC', "
            "'as_planned', 'active', (%s::bigint[])[1 + g %% 6], %s, now() - interval '400 days', now() - interval '370 days' "
            "FROM generate_series(1, %s) g",
            [list(STAGES), list(LANGUAGES), series_ids, per_person, subscribers],
        ))
        for k in range(per_person):
            ids = [steps[i][k] for i in range(6)]
            timed(f"insert deliveries of step #{k + 1} ({subscribers:,})", lambda ids=ids, k=k: cursor.execute(
                "INSERT INTO nurture_delivery (subscriber_id, step_id, status, article_versions, message_id, "
                "provider_message_id, attempts, failure_reason, queued_at, sent_at) "
                "SELECT g, (%s::bigint[])[1 + g %% 6], 'sent', '{}', '', 'pm-' || g || '-' || %s, 1, '', "
                "now() - make_interval(days => (g / 6) %% 330 + (%s - %s) * 3, secs => g %% 86400), "
                "now() - make_interval(days => (g / 6) %% 330 + (%s - %s) * 3, secs => g %% 86400) "
                "FROM generate_series(1, %s) g",
                [ids, k, per_person - 1, k, per_person - 1, k, subscribers],
            ))
        for event_type, modulo, below in (("delivered", 10, 3), ("opened", 10, 1), ("bounced", 100, 1), ("complained", 1000, 1)):
            timed(f"insert {event_type} events", lambda e=event_type, m=modulo, b=below: cursor.execute(
                "INSERT INTO nurture_providerevent (provider, event_id, event_type, delivery_id, provider_message_id, "
                "reject_reason, description, suppressed_address, timestamp, received_at) "
                "SELECT 'bench', %s || '-' || id, %s, id, provider_message_id, '', '', false, sent_at + interval '1 minute', "
                "sent_at + interval '1 minute' FROM nurture_delivery WHERE id %% %s < %s",
                [e, e, m, b],
            ))
        timed("5% unsubscribe 0-9 days after their last email", lambda: cursor.execute(
            "UPDATE nurture_subscriber SET status = 'unsubscribed', "
            "unsubscribed_at = LEAST(now(), now() - make_interval(days => ((id / 6) % 330)::int, secs => (id % 86400)::int) "
            "+ make_interval(days => ((id / 20) % 10)::int)) WHERE id % 20 = 0"
        ))
        for table in ("nurture_subscriber", "nurture_delivery", "nurture_providerevent"):
            cursor.execute(f"ANALYZE {table}")


def time_pages(*, client, series_ids: list[int]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    variants = [*PERIODS, {"start": "2025-11-27", "end": "2026-11-26"}]
    for fmt in ("html", "csv"):
        seconds, queries, slowest = [], [], ("", 0.0)
        for series_id in series_ids:
            for variant in variants:
                params = {"series": series_id, **variant, **({"format": "csv"} if fmt == "csv" else {})}
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = client.get("/admin/nurture/results/", params)
                    took = time.perf_counter() - started
                assert response.status_code == 200, (params, response.status_code)
                seconds.append(took)
                queries.append(len(captured))
                if took > slowest[1]:
                    slowest = (str(variant), took)
        print(
            f"  results pages as {fmt:<4}: {len(seconds)} pages, median {1000 * statistics.median(seconds):6.1f} ms, "
            f"slowest {1000 * slowest[1]:6.1f} ms ({slowest[0]}), queries per page {min(queries)}-{max(queries)}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--deliveries", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="leave the filled database (for --reuse)")
    parser.add_argument("--reuse", action="store_true", help="do not empty and refill: time on what is there")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_nurture_results")
    if not url.startswith("postgres"):
        print("bench_results needs PostgreSQL (BENCH_DATABASE_URL=postgres://...)", file=sys.stderr)
        return 2
    ensure_database(url)
    setup_django(url)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0, interactive=False)
    from nurture.models import Delivery, ProviderEvent, StepDailyResults, Subscriber
    from nurture.services.results import results_summarise

    steps = make_series()
    print(f"results benchmark on {url.rsplit('@', 1)[-1]}")
    if not args.reuse:
        reset()
        fill(subscribers=args.subscribers, deliveries=args.deliveries, steps=steps)
    print(
        f"  filled: subscribers={Subscriber.objects.count():,} deliveries={Delivery.objects.count():,} "
        f"events={ProviderEvent.objects.count():,} unsubscribed={Subscriber.objects.filter(unsubscribed_at__isnull=False).count():,}",
        flush=True,
    )
    first = timed("summary, first run (every day since the first email)", lambda: results_summarise(rebuild=True))
    print(f"    wrote {first.rows:,} rows (step x day) for {first.first_day} .. {first.last_day}; table has {StepDailyResults.objects.count():,}")
    timed("summary, hourly run (the recent days only)", results_summarise)
    user_model = get_user_model()
    user_model.objects.filter(username="bench-results").delete()
    staff = user_model.objects.create_superuser("bench-results", "bench@staff.example", "bench-password-long")
    client = Client()
    client.force_login(staff)
    client.get("/admin/nurture/results/")  # warm up (template loading)
    series_ids = sorted({sid for sid in StepDailyResults.objects.values_list("step__series_id", flat=True).distinct()})
    time_pages(client=client, series_ids=series_ids)
    staff.delete()
    if not args.keep:
        reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
