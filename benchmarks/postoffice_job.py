"""The django-post-office side of `make bench` (benchmarks/run_all.py runs it).

Runs inside its own virtual environment (var/bench/postoffice-venv, made by run_all.py with
django-post-office pinned to its latest release and the project's Django and anymail versions);
imports nothing from this project. A minimal Django project configured here in code: post_office
queueing into its own scratch PostgreSQL database, delivering through anymail's real Postmark
backend to the fake provider whose URL it is given.

It queues N emails of the given body (post_office's bulk `send_many`, timed separately), then
sends them with `send_queued_mail_until_done(processes=P)` and THREADS_PER_PROCESS=T: the
documented parallel mode (`manage.py send_queued_mail --processes P`). Every other post_office
setting stays at its default. Prints one JSON line with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from urllib.parse import urlsplit


def configure(*, database_url: str, api_url: str, threads: int) -> None:
    import django
    from django.conf import settings

    url = urlsplit(database_url)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "post_office", "anymail"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": url.path.lstrip("/"),
                "USER": url.username or "postgres",
                "PASSWORD": url.password or "",
                "HOST": url.hostname or "127.0.0.1",
                "PORT": url.port or 5432,
            }
        },
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        EMAIL_BACKEND="post_office.EmailBackend",
        DEFAULT_FROM_EMAIL="Second Opinion Guide <guide@example.org>",
        POST_OFFICE={
            "BACKENDS": {"default": "anymail.backends.postmark.EmailBackend"},
            "THREADS_PER_PROCESS": threads,
        },
        ANYMAIL={"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": api_url},
        EMAIL_TIMEOUT=30,
        LOGGING_CONFIG=None,
    )
    django.setup()


def peak_rss_mib() -> float:
    """Peak resident memory of this process (post_office forks its pool from here)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--emails", type=int, required=True)
    parser.add_argument("--body", required=True, help="JSON file: subject, text, html, headers")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=5)
    args = parser.parse_args()

    configure(database_url=args.database_url, api_url=args.api_url, threads=args.threads)
    from django.core.management import call_command
    from django.db import connection
    from post_office import mail
    from post_office.models import Email
    from post_office.version import VERSION

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE post_office_log, post_office_email RESTART IDENTITY CASCADE")
    with open(args.body) as handle:
        body = json.load(handle)

    started = time.perf_counter()
    kwargs = [
        {
            "recipients": [f"load{i}@example.org"],
            "sender": "Second Opinion Guide <guide@example.org>",
            "subject": body["subject"],
            "message": body["text"],
            "html_message": body["html"],
            "headers": body.get("headers") or {},
        }
        for i in range(args.emails)
    ]
    for start in range(0, len(kwargs), 1000):
        mail.send_many(kwargs[start : start + 1000])
    queue_seconds = time.perf_counter() - started

    from post_office.mail import send_queued_mail_until_done

    lockfile = os.path.join(tempfile.mkdtemp(prefix="bench-post-office-"), "post_office")
    started = time.perf_counter()
    send_queued_mail_until_done(lockfile=lockfile, processes=args.processes)
    send_seconds = time.perf_counter() - started

    counts = {status: Email.objects.filter(status=status).count() for status in (0, 1, 2, 3)}  # sent, failed, queued, requeued
    print(
        json.dumps(
            {
                "version": VERSION if isinstance(VERSION, str) else ".".join(map(str, VERSION)),
                "emails": args.emails,
                "sent": counts[0],
                "failed": counts[1],
                "left_queued": counts[2] + counts[3],
                "queue_seconds": queue_seconds,
                "send_seconds": send_seconds,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
