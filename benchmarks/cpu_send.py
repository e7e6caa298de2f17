"""The engine's own CPU per email, the provider call excluded, measured in one process.

    .venv/bin/python -m benchmarks.cpu_send [--emails 2000] [--path batch|single] [--profile 25] [--latency-ms 50]

N planned deliveries are sent by the send task's own body (`send_deliveries_task`, called in this
process, batches as the planner enqueues them, with a worker process's collector settings from
config/celery.py, after Django's checks as a worker's start runs them) through anymail's real Postmark backend to the fake
Postmark answering at once, which runs in a process of its own so that its CPU is not counted. The
process's CPU (user + system, every thread: the task and the send pool) over the sending, per
email, is "in all"; the CPU the threads spend inside anymail (building each message's payload,
posting, reading the answer: timed per thread, the outermost anymail frame only) is "the call";
the difference is the engine's own work: claim, re-check, building the email, the rate limit, the
writes. `--path batch` uses Postmark's /email/batch, `--path single` one call per email.
`--profile N` runs cProfile over the sending (slower: the figures are then only for reading the
profile) and prints the N functions with the most own time.
`--latency-ms` makes the fake answer after that long (default: at once), so that the wall time per
batch ("seconds" over the batches) shows what overlapping the calls saves.

BENCH_DATABASE_URL / BENCH_REDIS_URL as for run_all (scratch: emptied).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

from benchmarks.engine_runs import NO_CEILING, load_library, plan_emails, reset_tables, setup_bench_database

_inside = threading.local()


class CallClock:
    """CPU the threads spend inside anymail's methods, each thread timing its own outermost call."""

    def __init__(self):
        self.seconds = 0.0
        self.lock = threading.Lock()

    def wrap(self, function):
        clock = self

        def timed(*args, **kwargs):
            depth = getattr(_inside, "depth", 0)
            _inside.depth = depth + 1
            started = time.thread_time() if depth == 0 else 0.0
            try:
                return function(*args, **kwargs)
            finally:
                _inside.depth = depth
                if depth == 0:
                    spent = time.thread_time() - started
                    with clock.lock:
                        clock.seconds += spent

        return timed


@contextmanager
def anymail_timed(clock: CallClock):
    """Every way the engine enters anymail's Postmark backend, timed by `clock`."""
    from anymail.backends import base, base_requests, postmark

    patched = [
        (base.AnymailBaseBackend, "send_messages"),
        (postmark.EmailBackend, "build_message_payload"),
        (base_requests.AnymailRequestsBackend, "post_to_esp"),
        (base_requests.AnymailRequestsBackend, "deserialize_json_response"),
    ]
    originals = [(owner, name, owner.__dict__[name]) for owner, name in patched]
    for owner, name, function in originals:
        setattr(owner, name, clock.wrap(function))
    try:
        yield
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)


@contextmanager
def fake_postmark_process(latency_ms: float = 0.0):
    """The fake Postmark (keep-alive, answering after `latency_ms`, keeping no bodies) in a child process."""
    child = subprocess.Popen([sys.executable, "-m", "benchmarks.cpu_send", "--serve", "--latency-ms", str(latency_ms)],
                             stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the fake provider did not start")
        yield url
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def serve(latency_ms: float = 0.0) -> int:
    from support.fake_provider import FakeProvider

    with FakeProvider(keep_alive=True) as fake:
        fake.state.merge_bodies = False
        fake.state.latency = latency_ms / 1000
        print(fake.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
    return 0


def measure(*, emails: int, path: str, redis_url: str, batch: int | None = None, profile_top: int = 0,
            latency_ms: float = 0.0) -> dict:
    """Send `emails` planned deliveries in this process; the CPU figures per email."""
    import cProfile
    import gc
    import io
    import os
    import pstats

    import redis
    from django.conf import settings
    from django.core.checks import run_checks
    from django.test.utils import override_settings

    from config.celery import worker_process_gc_tuned
    from nurture.models import Delivery
    from nurture.sending import provider_health
    from nurture.tasks import chunks, send_deliveries_task

    planned, _ = plan_emails(emails)
    redis.Redis.from_url(redis_url).flushdb()
    # As a Celery worker starts (celery/fixups/django.py): Django's checks, which import the URL
    # configuration. Otherwise this process would count that one-off import as sending work.
    run_checks()
    clock = CallClock()
    batch = batch or settings.NURTURE_SEND_BATCH_SIZE
    with fake_postmark_process(latency_ms) as url, override_settings(
        EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
        ANYMAIL={**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": url},
        NURTURE_BATCH_SEND=path == "batch", NURTURE_SENDS_PER_SECOND=NO_CEILING, NURTURE_SEND_BATCH_SIZE=batch,
        CELERY_BROKER_URL=redis_url,  # the rate limit counts in Redis, as in a worker
    ), anymail_timed(clock):
        provider_health.forget()
        profiler = cProfile.Profile() if profile_top else None
        # This process sends as a worker process does, with its collector settings (restored after).
        threshold = gc.get_threshold()
        worker_process_gc_tuned()
        try:
            before, started = os.times(), time.monotonic()
            if profiler is not None:
                profiler.enable()
            for ids in chunks(planned, batch):
                send_deliveries_task(ids)
            if profiler is not None:
                profiler.disable()
            after, elapsed = os.times(), time.monotonic() - started
        finally:
            gc.unfreeze()
            gc.set_threshold(*threshold)
    cpu = (after.user - before.user) + (after.system - before.system)
    sent = Delivery.objects.filter(status=Delivery.Status.SENT).count()
    reset_tables()
    result = {
        "path": path, "emails": len(planned), "sent": sent, "seconds": elapsed, "batch": batch, "latency_ms": latency_ms,
        "cpu_ms_per_email": 1000 * cpu / max(1, len(planned)),
        "call_ms_per_email": 1000 * clock.seconds / max(1, len(planned)),
        "own_ms_per_email": 1000 * (cpu - clock.seconds) / max(1, len(planned)),
        "profiled": bool(profiler),
    }
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(profile_top)
        result["profile"] = out.getvalue()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--path", choices=("batch", "single"), default="batch")
    parser.add_argument("--send-batch", type=int, help="NURTURE_SEND_BATCH_SIZE (default: the engine's own)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile: print the N functions with the most own time")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the fake provider's answer latency (default 0)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the fake provider's child process
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.latency_ms)
    redis_url = setup_bench_database()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    load_library()
    result = measure(emails=args.emails, path=args.path, redis_url=redis_url, batch=args.send_batch, profile_top=args.profile,
                     latency_ms=args.latency_ms)
    print(result.pop("profile", ""))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
