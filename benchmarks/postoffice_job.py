"""The django-post-office side of `make bench` (benchmarks/run_all.py runs it).

Runs inside its own virtual environment (var/bench/postoffice-venv, made by run_all.py with
django-post-office pinned to its latest release and the project's Django and anymail versions);
imports nothing from this project. A minimal Django project configured here in code: post_office
queueing into its own scratch PostgreSQL database, delivering through anymail's real Postmark
backend to the fake provider whose URL it is given.

It queues N emails of the given body (post_office's bulk `send_many`, timed separately), then
sends them with `send_queued_mail_until_done(processes=P)` and THREADS_PER_PROCESS=T: the
documented parallel mode (`manage.py send_queued_mail --processes P`). Every other post_office
setting stays at its default. Prints one JSON line with the figures, the CPU seconds its processes
spent sending among them.

With --floor it sends the same N emails with anymail's Postmark backend directly, one connection in
one thread, no queue and no database: the per-call cost that the engine and post-office share (the
backend building the request, requests and http.client), measured as this process's CPU per call.
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


def cpu_seconds() -> float:
    """CPU of this process and of its children that have ended (post_office's pool)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def floor(args, body: dict) -> dict:
    from django.core.mail import EmailMultiAlternatives, get_connection

    connection = get_connection("anymail.backends.postmark.EmailBackend")
    connection.open()
    messages = []
    for i in range(args.emails):
        message = EmailMultiAlternatives(subject=body["subject"], body=body["text"], to=[f"floor{i}@example.org"],
                                         headers=body.get("headers") or {}, connection=connection)
        message.attach_alternative(body["html"], "text/html")
        messages.append(message)
    cpu, started = cpu_seconds(), time.perf_counter()
    for message in messages:
        message.send()
    return {"emails": args.emails, "sent": args.emails, "send_seconds": time.perf_counter() - started,
            "cpu_seconds": cpu_seconds() - cpu}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--emails", type=int, required=True)
    parser.add_argument("--body", required=True, help="JSON file: subject, text, html, headers")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=5)
    parser.add_argument("--floor", action="store_true", help="anymail's backend alone, one thread (see above)")
    args = parser.parse_args()
    if args.floor:
        configure(database_url=args.database_url, api_url=args.api_url, threads=1)
        with open(args.body) as handle:
            print(json.dumps(floor(args, json.load(handle))))
        return 0

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
    cpu, started = cpu_seconds(), time.perf_counter()
    send_queued_mail_until_done(lockfile=lockfile, processes=args.processes)
    send_seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu

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
                "cpu_seconds": cpu,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
