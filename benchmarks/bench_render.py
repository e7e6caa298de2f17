"""Measure the cost of one nurture email: a full render vs the cached render + personalisation.

    python -m benchmarks.bench_render [--emails N] [--steps S]

Runs against a throw-away SQLite database with the default library loaded (support/library.py),
so it needs no server. Prints measured figures; it asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def setup_django(db_path: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000, help="emails per measurement (default 1000)")
    parser.add_argument("--steps", type=int, default=4, help="distinct steps the emails are spread over")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        from nurture.emails.cache import render_cache, render_step
        from nurture.emails.layout import render_step_full
        from nurture.emails.links import personal_for
        from nurture.emails.messages import build_step_email
        from nurture.models import Step, Subscriber
        from nurture.selectors.series import step_published_articles
        from support.library import load_default_library

        load_default_library()
        steps = list(Step.objects.select_related("series").order_by("series__language", "position")[: args.steps])
        articles = {s.pk: step_published_articles(step_id=s.pk) for s in steps}
        # Unsaved subscribers with ids: token signing needs only the id.
        names = ["Ana", "O'Brien", "Zoë", "", "李", "<Sam & Co>"]
        subscribers = [
            Subscriber(pk=i + 1, email=f"s{i}@example.org", first_name=names[i % len(names)], stage="in_treatment")
            for i in range(args.emails)
        ]

        def run(render) -> float:
            started = time.perf_counter()
            for i, subscriber in enumerate(subscribers):
                step = steps[i % len(steps)]
                language = step.series.language
                personal = personal_for(subscriber, language=language, delivery_id=i + 1)
                render(step=step, articles=articles[step.pk], language=language, personal=personal)
            return (time.perf_counter() - started) / len(subscribers)

        def whole_message() -> float:
            started = time.perf_counter()
            for i, subscriber in enumerate(subscribers):
                build_step_email(step=steps[i % len(steps)], subscriber=subscriber, delivery_id=i + 1).message().as_bytes()
            return (time.perf_counter() - started) / len(subscribers)

        full_runs, cached_runs, message_runs = [], [], []
        for _ in range(3):
            full_runs.append(run(render_step_full))
            render_cache.clear()
            cached_runs.append(run(render_step))  # includes the one miss per step
            message_runs.append(whole_message())
        full, cached, message = min(full_runs), min(cached_runs), min(message_runs)
        html_kb = len(render_step_full(
            step=steps[0], articles=articles[steps[0].pk], language=steps[0].series.language,
            personal=personal_for(subscribers[0], language=steps[0].series.language, delivery_id=1),
        )[0].encode()) / 1024

        print(f"emails per run: {len(subscribers)} over {len(steps)} steps; best of 3 runs; HTML part ~{html_kb:.0f} KiB")
        print(f"full render (template + CSS inlining) per email:   {full * 1000:8.3f} ms")
        print(f"cached render + personalisation per email:         {cached * 1000:8.3f} ms")
        print(f"speed-up:                                          {full / cached:8.1f}x")
        print(f"whole message (DB read + build + MIME bytes), cached: {message * 1000:6.3f} ms")
        print(f"cached runs: {', '.join(f'{r * 1000:.3f}' for r in cached_runs)} ms; "
              f"full runs: {', '.join(f'{r * 1000:.3f}' for r in full_runs)} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
