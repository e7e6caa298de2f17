"""Benchmark: planning cost follows the due set, not the population.

Fills a scratch database with active subscribers of whom a fixed number are due, runs the real
planner (no broker: send batches are only counted), and prints wall time, SQL queries and peak
Python memory for:

  A. the base population (default 100,000 subscribers, 1% due),
  B. a 10x larger idle population with the same due set,
  C. the 10x population with a 10x larger due set (time should grow ~10x, memory should not).

Run against PostgreSQL (a scratch database is created and emptied; nothing else is touched):

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_nurture_sched \\
        .venv/bin/python -m benchmarks.bench_planner [--subscribers 100000] [--due-fraction 0.01]

Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from datetime import timedelta


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("NURTURE_DAY_SECONDS", "60")  # short days: no local window, cap in "days"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def ensure_database(url: str) -> None:
    """Create the scratch PostgreSQL database if it does not exist."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def fill(*, total: int, due: int, series_id: int) -> None:
    """Insert `total` active subscribers, `due` of them due now (spread evenly), in one statement
    per 100k rows (generate_series), with every other column at its model default."""
    from django.db import connection
    from django.utils import timezone

    from nurture.models import Subscriber

    now = timezone.now()
    every = max(1, total // due) if due else total + 1
    computed = {
        "email": "'bench' || g || '@example.org'",
        "status": "'active'",
        "stage": "'in_treatment'",
        "language": "'en'",
        "series_id": str(series_id),
        "next_send_at": f"CASE WHEN g %% {every} = 0 THEN %(now)s - interval '1 minute' ELSE %(now)s + (1 + g %% 30) * interval '1 day' END",
        "confirmed_at": "%(now)s",
        "created_at": "%(now)s",
    }
    columns, values, params = [], [], {"now": now}
    for f in Subscriber._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(f'"{f.column}"')
        if f.name in computed or f.attname in computed:
            values.append(computed.get(f.name) or computed[f.attname])
        else:
            key = f"d_{f.attname}"
            params[key] = f.get_db_prep_save(f.get_default(), connection) if f.has_default() or not f.null else None
            values.append(f"%({key})s")
    sql = f'INSERT INTO nurture_subscriber ({", ".join(columns)}) SELECT {", ".join(values)} FROM generate_series(%(start)s, %(end)s) g'
    with connection.cursor() as cursor:
        for start in range(1, total + 1, 100_000):
            cursor.execute(sql, {**params, "start": start, "end": min(total, start + 99_999)})
        cursor.execute("ANALYZE nurture_subscriber")


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE nurture_delivery, nurture_subscriber, nurture_consentrecord RESTART IDENTITY CASCADE")


def run_planner(label: str, *, total: int, due: int, series_id: int, batch_size: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from nurture.services import planning

    reset()
    started = time.perf_counter()
    fill(total=total, due=due, series_id=series_id)
    fill_seconds = time.perf_counter() - started
    send_batches = []
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = planning.deliveries_plan_due(batch_size=batch_size, enqueue=lambda ids: send_batches.append(len(ids)))
        seconds = time.perf_counter() - started
    # Peak Python memory in a second run over the same due set (tracemalloc slows the code it
    # watches, so time is measured without it).
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM nurture_delivery")
        cursor.execute("UPDATE nurture_subscriber SET next_step_position = 0, next_send_at = %s WHERE next_step_position > 0", [timezone.now() - timedelta(minutes=1)])
    tracemalloc.start()
    planning.deliveries_plan_due(batch_size=batch_size, enqueue=lambda ids: None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row = {
        "case": label,
        "subscribers": total,
        "due": due,
        "planned": result.planned,
        "seconds": seconds,
        "queries": len(queries),
        "peak_mib": peak / 2**20,
        "ms_per_due": 1000 * seconds / max(1, result.planned),
        "fill_s": fill_seconds,
        "send_batches": len(send_batches),
    }
    print(
        f"{label:<44} subscribers={total:>9,} due={due:>7,} planned={result.planned:>7,} "
        f"time={seconds:7.3f}s queries={len(queries):>5} peak_py_mem={row['peak_mib']:6.1f}MiB "
        f"({row['ms_per_due']:.3f} ms/due; fill {fill_seconds:.1f}s)",
        flush=True,
    )
    return row


def explain_due_query() -> str:
    from django.db import transaction
    from django.utils import timezone

    from nurture.selectors.subscribers import subscribers_due

    with transaction.atomic():
        qs = subscribers_due(now=timezone.now()).select_for_update(skip_locked=True, of=("self",))[:500]
        return qs.explain()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--due-fraction", type=float, default=0.01)
    parser.add_argument("--scale", type=int, default=10, help="how much larger the idle population gets in case B")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_nurture_sched")
    if not url.startswith("postgres"):
        print("bench_planner needs PostgreSQL (BENCH_DATABASE_URL=postgres://...)", file=sys.stderr)
        return 2
    ensure_database(url)
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from content.models import Article
    from nurture.models import Series, Step, StepArticle

    series, _ = Series.objects.get_or_create(stage="in_treatment", language="en", defaults={"name": "bench"})
    if not series.steps.exists():
        for position in range(5):
            step = Step.objects.create(series=series, position=position, delay_days=3 if position else 0, subject=f"Bench step {position}")
            article, _ = Article.objects.get_or_create(
                slug=f"bench-{position}", language="en",
                defaults={"title": f"Bench {position}", "source_section": "bench", "body_markdown": "x", "status": "published"},
            )
            StepArticle.objects.create(step=step, article=article)
            if not article.is_approved:  # with DEBUG off only approved text is planned
                from content.services import article_approve
                from support.library import sample_reviewer

                article_approve(article_id=article.pk, user=sample_reviewer())

    base, due = args.subscribers, max(1, int(args.subscribers * args.due_fraction))
    print(f"planner benchmark on {url.rsplit('@', 1)[-1]}, batch size {args.batch_size}")
    rows = [
        run_planner("A. base population", total=base, due=due, series_id=series.pk, batch_size=args.batch_size),
        run_planner(f"B. {args.scale}x idle population, same due set", total=base * args.scale, due=due, series_id=series.pk, batch_size=args.batch_size),
        run_planner(f"C. {args.scale}x population, {args.scale}x due set", total=base * args.scale, due=due * args.scale, series_id=series.pk, batch_size=args.batch_size),
    ]
    a, b, c = rows
    print(f"B/A time ratio {b['seconds'] / a['seconds']:.2f} (population x{args.scale}, due x1)")
    print(f"C/B time ratio {c['seconds'] / b['seconds']:.2f} (due x{args.scale}); peak memory C/B {c['peak_mib'] / max(0.01, b['peak_mib']):.2f}")
    print("due query plan at the 10x population:\n" + explain_due_query())
    reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
