"""Planning as `make bench` measures it: the real planner over a filled population (the due run,
idle ticks just after it, peak Python memory) and the idle tick alone over a large population none
of whom is due, with EXPLAIN plans saved next to the output."""
from __future__ import annotations

import statistics
import time
import tracemalloc
from pathlib import Path

from benchmarks.bench_planner import fill
from benchmarks.engine_runs import reset_tables, the_series


def explain(out: Path, label: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the planner's locked due query and of one batch's history
    query, saved for the record (rolled back: nothing is locked or changed)."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from nurture import dialect
    from nurture.selectors.subscribers import subscribers_due
    from nurture.models import Subscriber

    now = timezone.now()
    with transaction.atomic():
        due = subscribers_due(now=now).select_for_update(skip_locked=True, of=("self",))[: settings.NURTURE_PLAN_BATCH_SIZE]
        due_plan = due.explain(analyze=True, buffers=True)
        ids = list(Subscriber.objects.order_by("-id").values_list("id", flat=True)[: settings.NURTURE_PLAN_BATCH_SIZE])
        with connection.cursor() as cursor:  # the planner's own history read (nurture/dialect.py)
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + dialect.HISTORY_SQL, [ids])
            history_plan = "\n".join(row[0] for row in cursor.fetchall())
        due_sql, history_sql = str(due.query), dialect.HISTORY_SQL.replace("%s", f"<the batch's {len(ids)} ids>")
        transaction.set_rollback(True)
    text = f"-- due query ({label}):\n{due_sql}\n\n{due_plan}\n\n-- one batch's history query ({label}):\n{history_sql}\n\n{history_plan}\n"
    (out / f"explain-{label}.txt").write_text(text)


def idle_ticks(n: int) -> list[float]:
    """The seconds of `n` planner ticks that find nobody due."""
    from django.utils import timezone

    from nurture.services import planning

    ticks = []
    for _ in range(n):
        started = time.perf_counter()
        idle = planning.deliveries_plan_due(now=timezone.now(), enqueue=None)
        ticks.append(time.perf_counter() - started)
        assert idle.planned == 0
    return ticks


def planner_case(*, args, out: Path, population: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from nurture.services import planning

    due = max(1, int(population * args.due_fraction))
    reset_tables()
    started = time.perf_counter()
    fill(total=population, due=due, series_id=the_series().pk)
    fill_seconds = time.perf_counter() - started
    explain(out, f"{population}-subscribers-{due}-due")
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = planning.deliveries_plan_due(now=timezone.now(), enqueue=None)
        due_seconds = time.perf_counter() - started
    # Idle ticks: everyone planned now has next_send_at in the future; nothing is due.
    ticks = idle_ticks(args.idle_ticks)
    explain(out, f"{population}-subscribers-idle")
    # Peak Python memory over the same due set again (tracemalloc slows what it watches).
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM nurture_delivery")
        cursor.execute("UPDATE nurture_subscriber SET next_step_position = 0, next_send_at = now() - interval '1 minute' WHERE next_step_position > 0")
        cursor.execute("ANALYZE nurture_subscriber")
    tracemalloc.start()
    planning.deliveries_plan_due(now=timezone.now(), enqueue=None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row = {"population": population, "due": due, "planned": result.planned, "due_seconds": due_seconds,
           "queries": len(queries), "idle_ms": 1000 * statistics.median(ticks), "idle_ms_max": 1000 * max(ticks),
           "peak_py_mib": peak / 2**20, "fill_seconds": fill_seconds}
    print(f"  planner {population:,} subscribers: {result.planned:,} due planned in {due_seconds:.3f}s "
          f"({len(queries)} queries, peak {row['peak_py_mib']:.1f} MiB); idle tick median {row['idle_ms']:.2f} ms "
          f"(max {row['idle_ms_max']:.2f}); fill {fill_seconds:.1f}s", flush=True)
    return row


def idle_only_case(*, args, out: Path, population: int) -> dict:
    """The idle tick alone over a large population none of whom is due (the planner's steady
    state: a fresh table, no rows just moved by a planning run)."""
    reset_tables()
    started = time.perf_counter()
    fill(total=population, due=0, series_id=the_series().pk)
    fill_seconds = time.perf_counter() - started
    ticks = idle_ticks(args.idle_ticks)
    explain(out, f"{population}-subscribers-none-due")
    row = {"population": population, "idle_ms": 1000 * statistics.median(ticks), "idle_ms_max": 1000 * max(ticks),
           "fill_seconds": fill_seconds}
    print(f"  planner {population:,} subscribers, none due: idle tick median {row['idle_ms']:.2f} ms "
          f"(max {row['idle_ms_max']:.2f}); fill {fill_seconds:.0f}s", flush=True)
    reset_tables()
    return row
