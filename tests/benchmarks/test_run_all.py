"""`make bench` at tiny sizes, so the benchmark cannot rot: every row is produced, every figure is
a positive number, nothing was accepted twice, and docs are written with the table. Timings never
decide pass or fail here (benchmarks print figures; they are read, not asserted)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.workers import database_url_for_subprocess

ROOT = Path(__file__).resolve().parents[2]

# Not in the end-to-end run (which goes one test at a time so timings hold): nothing here asserts a
# timing, so it runs beside the other tests on the pytest-xdist workers, in its own databases.
pytestmark = [pytest.mark.django_db(transaction=True)]

EXPECTED_ROWS = {
    "postmark_0ms", "engine_cpu_per_email_0ms", "cpu_per_email_0ms", "postmark_50ms", "mailgun_50ms", "postmark_batch_50ms",
    "engine_own_cpu_batch", "engine_own_cpu_single",
    "plan_idle_after_2000", "plan_due_2000", "plan_idle_after_4000", "plan_due_4000", "plan_idle_3000",
    "rss_30", "rss_60", "rss_growth", "ceiling_14", "ceiling_500",
}


def test_make_bench_smoke_produces_every_figure(postgres, redis_url, tmp_path):
    # Its own scratch databases next to this test's (the bench empties its tables as it goes).
    bench_db = database_url_for_subprocess() + "_bench"
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nProse before.\n\n<!-- bench:begin (written by benchmarks/run_all.py; do not edit by hand) -->\nold\n<!-- bench:end -->\n\nProse after.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "NURTURE_", "EMAIL_", "ANYMAIL_", "CELERY_"))}
    env.update({"BENCH_DATABASE_URL": bench_db, "BENCH_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)})
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.run_all", "--smoke", "--out", str(tmp_path / "out"), "--docs", str(docs)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]

    results = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = {row["key"]: row for row in results["rows"]}
    assert set(rows) == EXPECTED_ROWS
    for row in rows.values():
        assert isinstance(row["engine"], (int, float)) and row["engine"] > 0, row
    for key in ("postmark_0ms", "postmark_50ms"):
        assert rows[key]["post_office"] > 0 and rows[key]["ratio"] > 0
        assert rows[key]["extra"]["post_office"]["sent"] == rows[key]["extra"]["post_office"]["emails"]
        assert rows[key]["extra"]["post_office"]["version"] == results["meta"]["post_office_version"]
    for key in ("engine_own_cpu_batch", "engine_own_cpu_single"):  # the in-process runs sent everything too
        measured = rows[key]["extra"]["cpu_send"]
        assert measured["sent"] == measured["emails"] and 0 < measured["call_ms_per_email"] < measured["cpu_ms_per_email"]
    for row in rows.values():  # every engine run sent everything, each email once
        engine = row["extra"].get("engine")
        if engine:
            assert engine["sent"] == engine["emails"] and engine["accepted_twice"] == 0, engine

    meta = results["meta"]
    assert meta["machine"]["nproc"] >= 1 and meta["machine"]["ram_gib"] > 0 and meta["body_kib"] > 1
    assert list((tmp_path / "out").glob("explain-*.txt"))
    assert "Index Scan" in (tmp_path / "out" / "explain-4000-subscribers-idle.txt").read_text()
    assert "Index Scan" in (tmp_path / "out" / "explain-3000-subscribers-none-due.txt").read_text()

    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nProse before.") and text.rstrip().endswith("Prose after.")
    assert "old" not in text and "| one call per email (Postmark), latency 50 ms" in text
    assert "make bench ARGS=" in text and "cores" in text and "django-post-office" in text
    for line in run.stdout.splitlines():  # the printed table has a line per row
        if line.startswith("| what"):
            break
    else:
        pytest.fail("no table printed:\n" + run.stdout[-2000:])
