"""Benchmark: the staff audit trail (nurture/services/audit.py, nurture/admin/audit.py).

Fills a scratch PostgreSQL database with audit entries (a third of them past the retention period),
then prints: the cost of one `audit_record` (the write every audited staff page adds), the time and
peak Python memory of the auditors' CSV export of everything (streamed: memory should not grow with
the trail), and the daily purge of the expired third. Then the same for ten times as many entries.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_nurture_audit \\
        .venv/bin/python -m benchmarks.bench_audit [--entries 100000]

Prints figures; asserts nothing. The scratch database's audit table is emptied at the end.
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
        cursor.execute("ALTER TABLE nurture_auditentry DISABLE TRIGGER nurture_auditentry_append_only")
        cursor.execute("TRUNCATE nurture_auditentry RESTART IDENTITY")
        cursor.execute("ALTER TABLE nurture_auditentry ENABLE TRIGGER nurture_auditentry_append_only")


def fill(entries: int, user_id: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO nurture_auditentry (at, user_id, username, action, subscriber_id, delivery_id, detail) "
            "SELECT CASE WHEN g %% 3 = 0 THEN now() - interval '800 days' ELSE now() - (g || ' seconds')::interval END, "
            "%s, 'auditor', 'view', g %% 50000, NULL, 'subscriber page' FROM generate_series(1, %s) g",
            [user_id, entries],
        )
        cursor.execute("ANALYZE nurture_auditentry")


def run(label: str, *, entries: int, client, user) -> dict:
    from django.urls import reverse

    from nurture.services import audit

    reset()
    fill(entries, user.pk)
    started = time.perf_counter()
    for i in range(1000):
        audit.audit_record(user=user, action="view", subscriber_id=i, detail="subscriber page")
    per_record_ms = (time.perf_counter() - started)  # seconds for 1000 = ms each
    started = time.perf_counter()
    response = client.get(reverse("admin:nurture_auditentry_export"))
    size = sum(len(chunk) for chunk in response.streaming_content)
    export_seconds = time.perf_counter() - started
    # Peak Python memory in a second export (tracemalloc slows what it watches).
    tracemalloc.start()
    for _chunk in client.get(reverse("admin:nurture_auditentry_export")).streaming_content:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    started = time.perf_counter()
    purged = audit.audit_purge_expired()
    purge_seconds = time.perf_counter() - started
    print(
        f"{label:<18} entries={entries:>9,} | audit_record={per_record_ms:6.3f} ms each | "
        f"CSV export={export_seconds:7.2f}s {size / 2**20:6.1f}MiB peak_py_mem={peak / 2**20:5.1f}MiB | "
        f"purge={purge_seconds:6.2f}s deleted={purged:,}",
        flush=True,
    )
    return {"export": export_seconds, "peak": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_nurture_audit")
    if not url.startswith("postgres"):
        print("bench_audit needs PostgreSQL (BENCH_DATABASE_URL=postgres://...)", file=sys.stderr)
        return 2
    ensure_database(url)
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    setup_test_environment()
    user, _ = User.objects.get_or_create(username="bench-auditor", defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name="Auditors"))
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", defaults={"confirmed": True})
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    print(f"audit benchmark on {url.rsplit('@', 1)[-1]}")
    a = run("A. trail", entries=args.entries, client=client, user=user)
    b = run("B. 10x trail", entries=args.entries * 10, client=client, user=user)
    print(f"B/A export time ratio {b['export'] / a['export']:.2f} (entries x10); peak memory B/A {b['peak'] / max(1, a['peak']):.2f}")
    reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
