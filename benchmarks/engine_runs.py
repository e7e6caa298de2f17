"""The engine sending, as `make bench` measures it: N subscribers due, planned by the real planner,
sent by real Celery worker processes through anymail's real backend to a fake provider in this
process. Returns throughput, the busiest second at the provider, duplicates, RSS and CPU.

    .venv/bin/python -m benchmarks.engine_runs --provider postmark-batch --latency-ms 50 --emails 2000

(BENCH_DATABASE_URL / BENCH_REDIS_URL as for run_all.)"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.bench_planner import fill
from benchmarks.measure import busiest_second, cpu_seconds_of, peak_rss_mib
from benchmarks.profiles import start_profile, summarise_profile

NO_CEILING = 100_000.0  # sends per second: high enough never to bind
# "postmark": one call per email (the batch path off); "postmark-batch": Postmark's /email/batch;
# "mailgun": Mailgun's merge-field batch; "mailjet-batch": Mailjet's Messages array.
PROVIDER_KINDS = ("postmark", "postmark-batch", "mailgun", "mailjet-batch")


def reset_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE nurture_delivery, nurture_subscriber, nurture_consentrecord RESTART IDENTITY CASCADE")


def the_series():
    from nurture.models import Series

    return Series.objects.get(stage="in_treatment", language="en")


def plan_emails(n: int) -> tuple[list[int], float]:
    """n active subscribers of the in_treatment series, all due; the real planner plans them."""
    from django.utils import timezone

    from nurture.services import planning

    reset_tables()
    fill(total=n, due=n, series_id=the_series().pk)
    planned: list[int] = []
    started = time.perf_counter()
    planning.deliveries_plan_due(now=timezone.now(), enqueue=planned.extend)
    return planned, time.perf_counter() - started


def engine_send(*, args, provider_kind: str, latency_ms: float, emails: int, rate: float, batch: int, label: str, profile: bool = False) -> dict:
    """The measured run; with --profile naming `label`, then a second, smaller run under py-spy
    (sampling slows what it watches, so the figures come from the run without it)."""
    result = _engine_send(args=args, provider_kind=provider_kind, latency_ms=latency_ms, emails=emails, rate=rate, batch=batch, label=label)
    if label in args.profile:
        _engine_send(args=args, provider_kind=provider_kind, latency_ms=latency_ms, emails=min(emails, args.profile_emails),
                     rate=rate, batch=batch, label=label, profile=True)
    return result


def _engine_send(*, args, provider_kind: str, latency_ms: float, emails: int, rate: float, batch: int, label: str, profile: bool = False) -> dict:
    """Real worker processes send `emails` planned deliveries through anymail's real backend to
    the fake provider. Returns throughput, the busiest second at the provider, duplicates, RSS."""
    from django.conf import settings

    from nurture.models import Delivery
    from nurture.tasks import enqueue_send_batches
    from support.fake_esps import FakeMailjet
    from support.fake_provider import FakeMailgun, FakeProvider
    from support.workers import CeleryProcess, subprocess_env, use_broker_in_this_process
    import redis

    planned, plan_seconds = plan_emails(emails)
    redis.Redis.from_url(args.redis_url).flushdb()
    use_broker_in_this_process(args.redis_url)
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-{label}-", dir=args.out))
    fake = {"mailgun": FakeMailgun, "mailjet-batch": FakeMailjet}.get(provider_kind, FakeProvider)(keep_alive=True)
    fake.state.latency = latency_ms / 1000
    fake.state.merge_bodies = False  # the fakes keep no bodies: they share the senders' cores and memory
    batch_send = "0" if provider_kind == "postmark" else "1"
    with fake as provider:
        env = subprocess_env(
            broker_url=args.redis_url, outbox_dir=log_dir / "outbox", day_seconds=60,
            extra={**provider.anymail_env(), "NURTURE_SENDS_PER_SECOND": str(rate),
                   "NURTURE_SEND_BATCH_SIZE": str(batch), "NURTURE_BATCH_SEND": batch_send, "LOG_LEVEL": "WARNING",
                   **args.engine_env},
        )
        workers = [CeleryProcess("worker", f"{label}-{i}", env, log_dir) for i in range(args.workers)]
        for worker in workers:
            worker.start()
        profile_raw = Path(args.out) / f"profile-{label}.raw"
        profiler = start_profile(args, workers[0].proc.pid, profile_raw) if profile else None
        settled = (Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.SKIPPED)
        try:
            # Enqueued here as the planner would in a worker: batches sized by the workers' settings.
            previous = settings.NURTURE_SEND_BATCH_SIZE, settings.NURTURE_SENDS_PER_SECOND
            settings.NURTURE_SEND_BATCH_SIZE, settings.NURTURE_SENDS_PER_SECOND = batch, rate
            try:
                cpu_before = sum(cpu_seconds_of(w.proc.pid) for w in workers)
                here_before = time.process_time()
                started = time.monotonic()
                enqueue_send_batches(planned)
            finally:
                settings.NURTURE_SEND_BATCH_SIZE, settings.NURTURE_SENDS_PER_SECOND = previous
            done, last_progress, progress_at = 0, -1, time.monotonic()
            while done < len(planned):
                time.sleep(0.05 if len(planned) < 5000 else 0.25)
                done = Delivery.objects.filter(status__in=settled).count()
                if done != last_progress:
                    last_progress, progress_at = done, time.monotonic()
                elif time.monotonic() - progress_at > args.stall_seconds:
                    raise RuntimeError(f"{label}: no progress for {args.stall_seconds}s at {done}/{len(planned)}")
            elapsed = time.monotonic() - started
            cpu = sum(cpu_seconds_of(w.proc.pid) for w in workers) - cpu_before
            here_cpu = time.process_time() - here_before  # the fake provider's threads and this poll loop
            rss = [peak_rss_mib(w.proc.pid) for w in workers]
        finally:
            if profiler is not None:
                import signal

                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
                try:
                    profiler.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    profiler.kill()
            for worker in workers:
                worker.stop()
        sent = Delivery.objects.filter(status=Delivery.Status.SENT).count()
        counts = provider.state.acceptances_by_message_id()
        stamps = list(provider.state.request_times)
        calls = len(provider.state.calls)
    if profiler is not None:
        summary = summarise_profile(profile_raw)
        (Path(args.out) / f"profile-{label}.txt").write_text(
            f"py-spy --gil (on-CPU samples), worker {label}-0's pool process, {len(planned)} emails\n\n{summary}\n")
    result = {
        "label": label, "provider": provider_kind, "latency_ms": latency_ms, "emails": len(planned), "sent": sent,
        "seconds": elapsed, "per_second": sent / elapsed if elapsed else 0.0, "plan_seconds": plan_seconds,
        "busiest_second": busiest_second(stamps), "accepted_twice": sum(1 for c in counts.values() if c > 1),
        "api_calls": calls, "peak_rss_mib": max(rss) if rss else 0.0, "ceiling": rate, "batch": batch,
        "cpu_seconds": cpu, "cpu_ms_per_email": 1000 * cpu / max(1, len(planned)),
        "workers": args.workers, "provider_cpu_ms_per_email": 1000 * here_cpu / max(1, len(planned)),
    }
    print(f"  engine {label}{' (profiled, not measured)' if profile else ''}: {sent}/{len(planned)} sent in {elapsed:.2f}s = {result['per_second']:.1f}/s, "
          f"busiest second {result['busiest_second']}, {calls} calls, accepted twice {result['accepted_twice']}, "
          f"peak RSS {result['peak_rss_mib']:.0f} MiB, fake provider CPU {result['provider_cpu_ms_per_email']:.3f} ms per email (planned in {plan_seconds:.2f}s)", flush=True)
    return result



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provider", choices=PROVIDER_KINDS, default="postmark-batch")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--send-batch", type=int, help="NURTURE_SEND_BATCH_SIZE (default: the engine's own)")
    parser.add_argument("--rate", type=float, default=NO_CEILING)
    parser.add_argument("--engine-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--stall-seconds", type=float, default=120.0)
    parser.add_argument("--out", default=tempfile.mkdtemp(prefix="bench-engine-"))
    args = parser.parse_args(argv)
    args.engine_env = dict(item.split("=", 1) for item in args.engine_env)
    args.profile, args.profile_emails = set(), 0
    args.redis_url = setup_bench_database()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    load_library()
    result = engine_send(args=args, provider_kind=args.provider, latency_ms=args.latency_ms, emails=args.emails,
                         rate=args.rate, batch=args.send_batch or settings.NURTURE_SEND_BATCH_SIZE, label=f"{args.provider}-{args.latency_ms:g}ms")
    reset_tables()
    print(json.dumps(result, default=str))
    return 0


def setup_bench_database() -> str:
    """Django on BENCH_DATABASE_URL (made if missing, PostgreSQL only); returns BENCH_REDIS_URL."""
    from benchmarks.bench_planner import ensure_database, setup_django

    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_nurture")
    if not base.startswith("postgres"):
        raise SystemExit("make bench needs PostgreSQL (BENCH_DATABASE_URL=postgres://...)")
    ensure_database(base)
    os.environ["NURTURE_DAY_SECONDS"] = "60"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    setup_django(base)
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")


def load_library() -> None:
    """The starter library, approved as an operator would (with DEBUG off only reviewed text is sent)."""
    from django.core.management import call_command

    from content.services import articles_approve
    from support.library import sample_reviewer

    call_command("load_content", verbosity=0)
    articles_approve(user=sample_reviewer())


if __name__ == "__main__":
    raise SystemExit(main())
