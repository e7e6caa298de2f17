"""Does the sign-up form take longer for a new address than for a known one? (It used
to, by ~4 ms in the median of 60, which told whether someone is subscribed.)

    python -m benchmarks.bench_signup [--posts N]

Posts the form N times for new addresses and N times for one known (active) address, in pairs
whose order alternates,
through Django's test client against a throw-away SQLite database, with an in-memory broker (the
form only enqueues; no worker runs). Prints the medians and their difference; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=60, help="posts per kind of address (default 60)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        os.environ["CELERY_BROKER_URL"] = "memory://"
        os.environ["NURTURE_SIGNUP_RATE"] = "1000000/h"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
        import django

        django.setup()
        from django.core.management import call_command
        from django.test import Client

        from nurture.models import Subscriber

        call_command("migrate", verbosity=0)
        Subscriber.objects.create(email="known@example.org", stage="in_remission", status="active")
        client = Client()
        form = {"first_name": "Ana", "stage": "in_treatment", "language": "en", "consent": "on"}
        timings: dict[str, list[float]] = {"new": [], "known": []}
        for n in range(args.posts + 5):
            pair = [("new", f"new{n}@example.org"), ("known", "known@example.org")]
            for kind, address in (pair if n % 2 else pair[::-1]):  # alternate which goes first
                started = time.perf_counter()
                response = client.post("/", {**form, "email": address})
                elapsed = time.perf_counter() - started
                assert response.status_code == 302, response.status_code
                if n >= 5:  # the first few warm caches up
                    timings[kind].append(elapsed * 1000)
        new, known = statistics.median(timings["new"]), statistics.median(timings["known"])
        print(f"sign-up form posts: {args.posts} per kind, interleaved, after 5 warm-up pairs")
        print(f"median, new address:    {new:7.3f} ms")
        print(f"median, known address:  {known:7.3f} ms")
        print(f"difference (new-known): {new - known:+7.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
