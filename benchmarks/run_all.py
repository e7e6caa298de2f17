"""`make bench`: the engine and django-post-office doing the same job, in one run on one machine.

    .venv/bin/python benchmarks/run_all.py            # full sizes (tens of minutes on 2 cores)
    .venv/bin/python benchmarks/run_all.py --smoke    # tiny sizes: checks every part still runs

What it runs (PostgreSQL and Redis from BENCH_DATABASE_URL / BENCH_REDIS_URL, defaults on
127.0.0.1; the fake provider on a free loopback port, in this process):

- one call per email (anymail's real Postmark backend, fake Postmark answering after 0 and 50 ms):
  the engine's real Celery workers (--workers, prefork) send N planned deliveries, and
  django-post-office (`send_queued`, 2 processes x 5 threads, its documented parallel mode) sends
  N queued emails of the same body, from a virtual environment this script makes
  (var/bench/postoffice-venv: django-post-office pinned, the project's Django and anymail; never
  a dependency of the project);
- the Mailgun batch path (anymail's real Mailgun backend, fake Mailgun answering after 50 ms);
- planning (the real planner) at two population sizes: the idle tick (none due) and 1% due, with
  EXPLAIN plans of the due query and of the batch's history query saved next to the output;
- worker peak RSS after sending two numbers of emails;
- the sends-per-second ceiling held at two rates (busiest one-second window at the provider).

Prints a table, saves it (JSON and text) with the EXPLAIN plans under --out, and rewrites the
generated part of docs/benchmarks.md (--docs; --no-docs leaves it alone). Asserts nothing about
speed: figures are printed, never judged here.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_planner import ensure_database, fill, setup_django  # noqa: E402

POST_OFFICE_VERSION = "3.12.0"  # its latest release when this was written; --post-office-version to change
PY_SPY_VERSION = "0.4.3"
NO_CEILING = 100_000.0  # sends per second: high enough never to bind

SIZES = {
    "full": {
        "emails": 3000, "workers": 2, "mailgun_emails": 20_000, "mailgun_batch": 500,
        "postmark_batch_emails": 20_000, "postmark_batch": 500,
        "rss_emails": [10_000, 100_000], "planner": [100_000, 1_000_000], "due_fraction": 0.01,
        "ceilings": [14, 500], "ceiling_seconds": 10, "latencies_ms": [0, 50], "idle_ticks": 20,
        "idle_only": [10_000_000],
    },
    "smoke": {
        "emails": 40, "workers": 1, "mailgun_emails": 60, "mailgun_batch": 20,
        "postmark_batch_emails": 60, "postmark_batch": 20,
        "rss_emails": [30, 60], "planner": [2_000, 4_000], "due_fraction": 0.01,
        "ceilings": [14, 500], "ceiling_seconds": 0.1, "latencies_ms": [0, 50], "idle_ticks": 3,
        "idle_only": [3000],
    },
}


@dataclass
class Row:
    key: str  # stable id (the smoke test checks every one is there)
    what: str
    engine: float | None = None
    post_office: float | None = None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.engine is None or not self.post_office:
            return None
        return self.engine / self.post_office


# --- the machine ----------------------------------------------------------------------------------

def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.processor(), "ram_gib": round(ram_gib, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def service_versions(redis_url: str) -> dict:
    from django.db import connection
    import redis

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return {"postgresql": pg, "redis": redis.Redis.from_url(redis_url).info("server")["redis_version"]}


# --- helpers ------------------------------------------------------------------------------------

def busiest_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    busiest, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] < t - 1.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    return busiest


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a worker: its main process and its pool children, summed."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        status = Path(f"/proc/{p}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


def cpu_seconds_of(pid: int) -> float:
    """CPU (user + system) of a worker: its main process and its pool children, summed."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def reset_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE nurture_delivery, nurture_subscriber, nurture_consentrecord RESTART IDENTITY CASCADE")


def the_series():
    from nurture.models import Series

    return Series.objects.get(stage="in_treatment", language="en")


# --- the engine sending -----------------------------------------------------------------------------

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
    from support.fake_provider import FakeMailgun, FakeProvider
    from support.workers import CeleryProcess, subprocess_env, use_broker_in_this_process
    import redis

    planned, plan_seconds = plan_emails(emails)
    redis.Redis.from_url(args.redis_url).flushdb()
    use_broker_in_this_process(args.redis_url)
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-{label}-", dir=args.out))
    fake = FakeMailgun(keep_alive=True) if provider_kind == "mailgun" else FakeProvider(keep_alive=True)
    fake.state.latency = latency_ms / 1000
    fake.state.merge_bodies = False  # the fakes keep no bodies: they share the senders' cores and memory
    # "postmark": one call per email (the batch path off); "postmark-batch": Postmark's /email/batch.
    batch_send = "1" if provider_kind in ("mailgun", "postmark-batch") else "0"
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
        "workers": args.workers,
    }
    print(f"  engine {label}{' (profiled, not measured)' if profile else ''}: {sent}/{len(planned)} sent in {elapsed:.2f}s = {result['per_second']:.1f}/s, "
          f"busiest second {result['busiest_second']}, {calls} calls, accepted twice {result['accepted_twice']}, "
          f"peak RSS {result['peak_rss_mib']:.0f} MiB (planned in {plan_seconds:.2f}s)", flush=True)
    return result


# --- profiles (py-spy, in its own tools venv, only with --profile) ----------------------------------

def py_spy(args) -> Path:
    venv = Path(args.venv).parent / "tools-venv"
    exe = venv / "bin" / "py-spy"
    if not exe.exists():
        base = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"py-spy=={PY_SPY_VERSION}"], check=True)
    return exe


def start_profile(args, pid: int, out: Path) -> subprocess.Popen | None:
    """py-spy sampling the worker's pool process (where tasks run), raw collapsed stacks, only
    samples of the thread holding the GIL (`--gil`): where the process's CPU goes, across the task
    thread and the send threads. The sending is CPU-bound now, so that is what bounds it."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    target = int(children.read_text().split()[0]) if children.exists() and children.read_text().split() else pid
    return subprocess.Popen([str(py_spy(args)), "record", "--pid", str(target), "--format", "raw", "--rate", "200",
                             "--output", str(out), "--nonblocking", "--gil"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


PROVIDER_CALL = ("provider call (anymail, requests, HTTP)", ("anymail/", "requests/", "urllib3/", "http/client"))
KINDS_OF_WORK = (  # (kind, markers in a frame's file path), checked from the innermost frame out
    ("database (psycopg)", ("psycopg/",)),
    ("Redis (rate limit, broker)", ("redis/", "limits/", "kombu/")),
    ("building the email", ("nurture/emails/", "django/core/mail/", "css_inline", "django/template/")),
    ("Django ORM (building queries)", ("django/db/",)),
    ("Celery (task and result handling)", ("celery/", "billiard/")),
)


def _kind_of_work(stack: str) -> str:
    """The provider call wins wherever it is on the stack: everything anymail does (it parses
    addresses with Python's email package, encodes JSON, reads the proxy environment through
    requests) is the call's cost. Otherwise the innermost frame that says which."""
    frames = stack.split(";")
    if any(marker in frame for frame in frames for marker in PROVIDER_CALL[1]):
        return PROVIDER_CALL[0]
    for frame in reversed(frames):
        for kind, markers in KINDS_OF_WORK:
            if any(marker in frame for marker in markers):
                return kind
    return "other (task code, Python)"


def summarise_profile(raw: Path, top: int = 20) -> str:
    """Share of samples per function: where it was running (self) and on the stack (total)."""
    import collections

    self_counts, total_counts, categories, samples = collections.Counter(), collections.Counter(), collections.Counter(), 0
    if not raw.exists():
        return "(no profile written)"
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f.split(" (")[0] + (" (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")" if " (" in f else "") for f in stack.split(";")]
        samples += n
        self_counts[frames[-1]] += n
        categories[_kind_of_work(stack)] += n
        for frame in set(frames):
            total_counts[frame] += n
    if not samples:
        return "(no samples)"
    lines = [f"{samples} samples", "", "by kind of work (the innermost frame that says which):"]
    lines += [f"  {100 * n / samples:5.1f}%  {kind}" for kind, n in categories.most_common()]
    lines += ["", "self (where it was running):"]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in self_counts.most_common(top)]
    lines += ["", "total (on the stack), the engine's own functions:"]
    own = [(f, n) for f, n in total_counts.most_common() if any(k in f for k in (
        "sending.py", "send_calls.py", "deliveries.py", "esp_batch.py", "throttle.py", "tasks.py", "merge.py", "messages.py",
        "cache.py", "links.py", "providers.py", "tokens.py"))]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own[:top]]
    return "\n".join(lines)


# --- django-post-office -----------------------------------------------------------------------------

def postoffice_venv(args) -> Path:
    """var/bench/postoffice-venv with django-post-office pinned and the project's own Django,
    anymail and psycopg versions; made once, remade when a pin changes."""
    from importlib.metadata import version

    pins = [
        f"django-post-office=={args.post_office_version}",
        f"Django=={version('Django')}",
        f"django-anymail=={version('django-anymail')}",
        f"psycopg[binary]=={version('psycopg')}",
        f"requests=={version('requests')}",
    ]
    venv = Path(args.venv)
    marker = venv / ".bench-pins"
    python = venv / "bin" / "python"
    if python.exists() and marker.exists() and marker.read_text() == "\n".join(pins):
        return python
    print(f"making {venv} with {', '.join(pins)}", flush=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins], check=True)
    marker.write_text("\n".join(pins))
    return python


def sample_body(out: Path) -> tuple[Path, int]:
    """The engine's real step email for one planned delivery, as subject, text, html and list
    headers: post-office queues this same body."""
    from nurture.emails.messages import build_delivery_email
    from nurture.models import Delivery

    planned, _ = plan_emails(1)
    delivery = Delivery.objects.select_related("subscriber", "step__series").get(pk=planned[0])
    message = build_delivery_email(delivery)
    html = message.alternatives[0][0]
    headers = {k: v for k, v in message.extra_headers.items() if k.startswith("List-")}
    path = out / "body.json"
    path.write_text(json.dumps({"subject": message.subject, "text": message.body, "html": html, "headers": headers}))
    return path, len(message.body.encode()) + len(html.encode())


def postoffice_send(*, args, python: Path, body: Path, latency_ms: float, emails: int, floor: bool = False) -> dict:
    """django-post-office sending `emails` (or, floor=True, anymail's backend alone in one thread:
    postoffice_job.py --floor) in its own venv, against a fake Postmark in this process."""
    from support.fake_provider import FakeProvider

    with FakeProvider(keep_alive=True) as provider:
        provider.state.latency = latency_ms / 1000
        answer = subprocess.run(
            [str(python), str(ROOT / "benchmarks" / "postoffice_job.py"), "--database-url", args.postoffice_database_url,
             "--api-url", provider.url, "--emails", str(emails), "--body", str(body),
             "--processes", str(args.po_processes), "--threads", str(args.po_threads), *(["--floor"] if floor else [])],
            capture_output=True, text=True, cwd=tempfile.gettempdir(), env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        )
        if answer.returncode != 0:
            raise RuntimeError(f"post-office job failed:\n{answer.stdout[-2000:]}\n{answer.stderr[-4000:]}")
        result = json.loads(answer.stdout.strip().splitlines()[-1])
        result["busiest_second"] = busiest_second(list(provider.state.request_times))
        result["accepted"] = len(provider.state.accepted)
    result["per_second"] = result["sent"] / result["send_seconds"] if result["send_seconds"] else 0.0
    result["cpu_ms_per_email"] = 1000 * result["cpu_seconds"] / max(1, result["sent"])
    if floor:
        print(f"  anymail's Postmark backend alone, one thread: {result['sent']} calls, "
              f"{result['cpu_ms_per_email']:.2f} ms CPU per call", flush=True)
        return result
    result["per_second_with_queueing"] = result["sent"] / (result["send_seconds"] + result["queue_seconds"])
    print(f"  post-office {result['version']} latency {latency_ms:g} ms: {result['sent']}/{emails} sent in "
          f"{result['send_seconds']:.2f}s = {result['per_second']:.1f}/s ({result['per_second_with_queueing']:.1f}/s "
          f"with queueing), provider accepted {result['accepted']}", flush=True)
    return result


# --- planning ---------------------------------------------------------------------------------------

def explain(out: Path, label: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the planner's locked due query and of one batch's history
    query, saved for the record (rolled back: nothing is locked or changed)."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from nurture.models import Delivery, Subscriber
    from nurture.selectors.subscribers import subscribers_due

    now = timezone.now()
    with transaction.atomic():
        due = subscribers_due(now=now).select_for_update(skip_locked=True, of=("self",))[: settings.NURTURE_PLAN_BATCH_SIZE]
        due_plan = due.explain(analyze=True, buffers=True)
        ids = list(Subscriber.objects.order_by("-id").values_list("id", flat=True)[: settings.NURTURE_PLAN_BATCH_SIZE])
        history = Delivery.objects.filter(subscriber_id__in=ids).values_list("subscriber_id", "step_id", "status", "article_versions", "queued_at", "sent_at")
        history_plan = history.explain(analyze=True, buffers=True)
        due_sql, history_sql = str(due.query), str(history.query)
        transaction.set_rollback(True)
    text = f"-- due query ({label}):\n{due_sql}\n\n{due_plan}\n\n-- one batch's history query ({label}):\n{history_sql}\n\n{history_plan}\n"
    (out / f"explain-{label}.txt").write_text(text)


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
    ticks = []
    for _ in range(args.idle_ticks):
        started = time.perf_counter()
        idle = planning.deliveries_plan_due(now=timezone.now(), enqueue=None)
        ticks.append(time.perf_counter() - started)
        assert idle.planned == 0
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
    from django.utils import timezone

    from nurture.services import planning

    reset_tables()
    started = time.perf_counter()
    fill(total=population, due=0, series_id=the_series().pk)
    fill_seconds = time.perf_counter() - started
    ticks = []
    for _ in range(args.idle_ticks):
        started = time.perf_counter()
        idle = planning.deliveries_plan_due(now=timezone.now(), enqueue=None)
        ticks.append(time.perf_counter() - started)
        assert idle.planned == 0
    explain(out, f"{population}-subscribers-none-due")
    row = {"population": population, "idle_ms": 1000 * statistics.median(ticks), "idle_ms_max": 1000 * max(ticks),
           "fill_seconds": fill_seconds}
    print(f"  planner {population:,} subscribers, none due: idle tick median {row['idle_ms']:.2f} ms "
          f"(max {row['idle_ms_max']:.2f}); fill {fill_seconds:.0f}s", flush=True)
    reset_tables()
    return row


# --- the run ----------------------------------------------------------------------------------------

def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if unit == "x":
        return f"{value:.2f}"
    if unit in ("emails/s", "MiB", "ms/s"):
        return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def table(rows: list[Row]) -> str:
    header = ["what", "engine", "post-office", "engine / post-office", "unit", "target", "met", "note"]
    lines = [header]
    for row in rows:
        ratio = row.ratio
        lines.append([
            row.what, fmt(row.engine, row.unit), fmt(row.post_office, row.unit), f"{ratio:.2f}x" if ratio else "",
            row.unit, row.target, {True: "yes", False: "NO", None: ""}[row.met], row.note,
        ])
    return "\n".join("| " + " | ".join(cells) + " |" if i else "| " + " | ".join(cells) + " |\n|" + "---|" * len(cells)
                     for i, cells in enumerate(lines))


def run(args) -> list[Row]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("load_content", verbosity=0)
    from content.services import articles_approve  # with DEBUG off only approved text is sent (issue 21)
    from support.library import sample_reviewer

    articles_approve(user=sample_reviewer())

    print("post-office environment", flush=True)
    python = postoffice_venv(args)
    body, body_bytes = sample_body(out)
    args.body_kib = body_bytes / 1024
    print(f"body: {body_bytes / 1024:.1f} KiB (text + html) of the engine's own step email", flush=True)

    # 1. one call per email, engine vs post-office, at each latency
    for latency in args.latencies_ms:
        engine = engine_send(args=args, provider_kind="postmark", latency_ms=latency, emails=args.emails,
                             rate=NO_CEILING, batch=args.send_batch, label=f"postmark-{latency:g}ms")
        post = postoffice_send(args=args, python=python, body=body, latency_ms=latency, emails=args.emails)
        need = 3 if latency == 0 else 5
        ratio = engine["per_second"] / post["per_second"] if post["per_second"] else 0.0
        met = ratio >= need and (latency == 0 or engine["per_second"] >= 500)
        target = f">= {need}x post-office" + ("" if latency == 0 else ", >= 500/s")
        rows.append(Row(
            f"postmark_{latency:g}ms", f"one call per email (Postmark), latency {latency:g} ms, {args.emails:,} emails",
            engine["per_second"], post["per_second"], "emails/s", target, met,
            f"post-office with its queueing {post['per_second_with_queueing']:.0f}/s; engine planning {engine['plan_seconds']:.1f}s; "
            f"accepted twice {engine['accepted_twice']}",
            {"engine": engine, "post_office": post},
        ))
        if latency == 0:
            floor = postoffice_send(args=args, python=python, body=body, latency_ms=0, emails=args.emails, floor=True)
            own = engine["cpu_ms_per_email"] - floor["cpu_ms_per_email"]
            rows.append(Row(
                "engine_cpu_per_email_0ms", "the engine's own CPU per email, the provider call excluded (one call per email, latency 0 ms)",
                own, None, "ms", "< 0.5 ms", own < 0.5,
                f"{engine['cpu_ms_per_email']:.2f} ms in all, less anymail's Postmark call alone ({floor['cpu_ms_per_email']:.2f} ms)",
                {"engine": {k: engine[k] for k in ("cpu_seconds", "sent", "emails", "accepted_twice")}, "floor": floor},
            ))
            rows.append(Row(
                "cpu_per_email_0ms", f"CPU per email sent, latency 0 ms (the sender's own processes; the fake provider apart)",
                engine["cpu_ms_per_email"], post["cpu_ms_per_email"], "ms", "", None,
                f"anymail's Postmark backend alone, one thread, no queue: {floor['cpu_ms_per_email']:.2f} ms per call "
                f"(the part both pay)",
                {"engine": {k: engine[k] for k in ("cpu_seconds", "sent", "emails", "accepted_twice")}, "post_office": post, "floor": floor},
            ))

    # 2. the Mailgun batch path
    mailgun = engine_send(args=args, provider_kind="mailgun", latency_ms=50, emails=args.mailgun_emails,
                          rate=NO_CEILING, batch=args.mailgun_batch, label="mailgun-50ms")
    rows.append(Row(
        "mailgun_50ms", f"batch endpoint (Mailgun), latency 50 ms, {args.mailgun_emails:,} emails, batches of {args.mailgun_batch}",
        mailgun["per_second"], None, "emails/s", ">= 2,000/s", mailgun["per_second"] >= 2000,
        f"{mailgun['api_calls']} API calls; accepted twice {mailgun['accepted_twice']}", {"engine": mailgun},
    ))

    # 2b. Postmark's batch endpoint (/email/batch: each email its own message, up to 500 per call)
    postmark_batch = engine_send(args=args, provider_kind="postmark-batch", latency_ms=50, emails=args.postmark_batch_emails,
                                 rate=NO_CEILING, batch=args.postmark_batch, label="postmark-batch-50ms")
    rows.append(Row(
        "postmark_batch_50ms",
        f"batch endpoint (Postmark /email/batch), latency 50 ms, {args.postmark_batch_emails:,} emails, batches of {args.postmark_batch}",
        postmark_batch["per_second"], None, "emails/s", ">= 2,500/s", postmark_batch["per_second"] >= 2500,
        f"{postmark_batch['api_calls']} API calls; CPU {postmark_batch['cpu_ms_per_email']:.2f} ms per email in all; "
        f"accepted twice {postmark_batch['accepted_twice']}", {"engine": postmark_batch},
    ))

    # 3. planning
    for population in args.planner:
        case = planner_case(args=args, out=out, population=population)
        rows.append(Row(
            f"plan_idle_after_{population}",
            f"planner idle tick just after planning the due ones, {population:,} subscribers (median of {args.idle_ticks})",
            case["idle_ms"], None, "ms", "", None, f"max {case['idle_ms_max']:.2f} ms", {"planner": case},
        ))
        rows.append(Row(
            f"plan_due_{population}", f"planner, {case['due']:,} due among {population:,}",
            case["due_seconds"], None, "s", "<= 0.5 s for 10k among 1M" if population >= 1_000_000 else "",
            case["due_seconds"] <= 0.5 if population >= 1_000_000 else None,
            f"{case['queries']} queries, peak Python memory {case['peak_py_mib']:.1f} MiB", {"planner": case},
        ))

    for population in args.idle_only:
        case = idle_only_case(args=args, out=out, population=population)
        rows.append(Row(
            f"plan_idle_{population}", f"planner idle tick, {population:,} subscribers, none due (median of {args.idle_ticks})",
            case["idle_ms"], None, "ms", "<= 5 ms", case["idle_ms"] <= 5, f"max {case['idle_ms_max']:.2f} ms", {"planner": case},
        ))

    # 4. worker peak RSS
    rss = {}
    for n in args.rss_emails:
        result = engine_send(args=args, provider_kind="postmark", latency_ms=0, emails=n, rate=NO_CEILING,
                             batch=args.send_batch, label=f"rss-{n}")
        rss[n] = result
        rows.append(Row(
            f"rss_{n}", f"worker peak RSS after {n:,} emails (Postmark, latency 0)", result["peak_rss_mib"], None, "MiB",
            "", None, f"{result['per_second']:.0f} emails/s", {"engine": result},
        ))
    small, large = (rss[n]["peak_rss_mib"] for n in (min(rss), max(rss)))
    growth = large / small if small else 0.0
    rows.append(Row(
        "rss_growth", f"worker peak RSS, {max(rss):,} / {min(rss):,} emails", growth, None, "x", "<= 1.2x", growth <= 1.2,
    ))

    # 5. the ceiling
    for ceiling in args.ceilings:
        n = max(20, int(ceiling * args.ceiling_seconds))
        result = engine_send(args=args, provider_kind="postmark", latency_ms=0, emails=n, rate=float(ceiling),
                             batch=args.send_batch, label=f"ceiling-{ceiling}")
        rows.append(Row(
            f"ceiling_{ceiling}", f"ceiling {ceiling}/s held: busiest one-second window at the provider ({n:,} emails)",
            float(result["busiest_second"]), None, "emails", f"<= {ceiling}", result["busiest_second"] <= ceiling,
            f"average {result['per_second']:.1f}/s", {"engine": result},
        ))
    reset_tables()
    return rows


def write_docs(path: Path, *, rows: list[Row], meta: dict) -> None:
    """Rewrite the generated part of docs/benchmarks.md (between the markers); the rest is prose."""
    begin, end = "<!-- bench:begin (written by benchmarks/run_all.py; do not edit by hand) -->", "<!-- bench:end -->"
    m = meta["machine"]
    generated = "\n".join([
        begin,
        f"Run of {meta['date']} ({meta['size']}): `{meta['command']}`",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"PostgreSQL {meta['services']['postgresql']}, Redis {meta['services']['redis']}; "
        f"django-post-office {meta['post_office_version']} ({meta['po_processes']} processes x {meta['po_threads']} threads); "
        f"engine: {meta['workers']} worker processes, {meta.get('concurrency', '?')} calls in flight each, send batches of up to "
        f"{meta.get('send_batch', '?')}; email body {meta['body_kib']:.1f} KiB (text + HTML).",
        "",
        table(rows),
        "",
        f"Raw figures and EXPLAIN plans: `{meta['out']}` (results.json, explain-*.txt).",
        end,
    ])
    text = path.read_text() if path.exists() else "# Benchmarks\n\n" + begin + "\n" + end + "\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + generated + tail
    else:
        text = text.rstrip() + "\n\n" + generated + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the test suite runs this)")
    parser.add_argument("--emails", type=int, help="emails per engine / post-office comparison")
    parser.add_argument("--workers", type=int, help="engine worker processes")
    parser.add_argument("--send-batch", type=int, help="engine send batch (NURTURE_SEND_BATCH_SIZE; default: the engine's own)")
    parser.add_argument("--mailgun-emails", type=int)
    parser.add_argument("--mailgun-batch", type=int)
    parser.add_argument("--postmark-batch-emails", type=int)
    parser.add_argument("--postmark-batch", type=int)
    parser.add_argument("--rss-emails", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--planner", type=lambda s: [int(x) for x in s.split(",")], help="populations, e.g. 100000,1000000")
    parser.add_argument("--idle-only", type=lambda s: [int(x) for x in s.split(",") if x],
                        help="populations for the idle tick alone (default 10000000; '' for none): filling 10M rows takes minutes")
    parser.add_argument("--due-fraction", type=float)
    parser.add_argument("--idle-ticks", type=int)
    parser.add_argument("--ceilings", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--ceiling-seconds", type=float)
    parser.add_argument("--latencies-ms", type=lambda s: [float(x) for x in s.split(",")])
    parser.add_argument("--engine-env", action="append", default=[], metavar="NAME=VALUE", help="extra worker environment")
    parser.add_argument("--post-office-version", default=POST_OFFICE_VERSION)
    parser.add_argument("--po-processes", type=int, default=2)
    parser.add_argument("--po-threads", type=int, default=5)
    parser.add_argument("--venv", default=str(ROOT / "var" / "bench" / "postoffice-venv"))
    parser.add_argument("--out", help="output folder (default var/bench/<time>)")
    parser.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--stall-seconds", type=float, default=120.0)
    parser.add_argument("--profile", default="", help="engine runs to profile with py-spy, e.g. postmark-0ms,postmark-50ms,mailgun-50ms")
    parser.add_argument("--profile-emails", type=int, default=1000, help="emails in each profiled run")
    parser.add_argument("--rewrite-docs-from", metavar="RESULTS_JSON", help="rewrite --docs from a saved run's results.json and stop")
    args = parser.parse_args(argv)
    if args.rewrite_docs_from:
        saved = json.loads(Path(args.rewrite_docs_from).read_text())
        fields = {f for f in Row.__dataclass_fields__}
        rows = [Row(**{k: v for k, v in row.items() if k in fields}) for row in saved["rows"]]
        write_docs(Path(args.docs), rows=rows, meta=saved["meta"])
        print(table(rows))
        return 0
    size = "smoke" if args.smoke else "full"
    overridden = [name for name in SIZES[size] if getattr(args, name, None) is not None]
    for name, value in SIZES[size].items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    args.engine_env = dict(item.split("=", 1) for item in args.engine_env)
    args.profile = {label for label in args.profile.split(",") if label}
    stamp = datetime.now(dt_timezone.utc)
    args.out = args.out or str(ROOT / "var" / "bench" / stamp.strftime("%Y%m%d-%H%M%S"))
    args.out = str(Path(args.out).resolve())

    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_nurture")
    if not base.startswith("postgres"):
        print("make bench needs PostgreSQL (BENCH_DATABASE_URL=postgres://...)", file=sys.stderr)
        return 2
    args.redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    args.postoffice_database_url = base + "_post_office"
    ensure_database(base)
    ensure_database(args.postoffice_database_url)
    os.environ["NURTURE_DAY_SECONDS"] = "60"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    setup_django(base)
    from django.conf import settings

    # The engine runs with its own defaults unless told otherwise (--send-batch, --engine-env).
    args.send_batch = args.send_batch or settings.NURTURE_SEND_BATCH_SIZE
    args.concurrency = int(args.engine_env.get("NURTURE_SEND_CONCURRENCY", settings.NURTURE_SEND_CONCURRENCY))

    print(f"make bench ({size}): engine db {base.rsplit('@', 1)[-1]}, post-office db "
          f"{args.postoffice_database_url.rsplit('@', 1)[-1]}, redis {args.redis_url.rsplit('@', 1)[-1]}, out {args.out}", flush=True)
    started = time.monotonic()
    rows = run(args)
    m = machine()
    meta = {
        "date": stamp.strftime("%Y-%m-%d %H:%M UTC"), "size": f"{size} sizes except {', '.join(overridden)}" if overridden else f"{size} sizes", "machine": m, "services": service_versions(args.redis_url),
        "command": "make bench" + (f" ARGS='{' '.join(argv)}'" if argv else ""),
        "post_office_version": args.post_office_version, "po_processes": args.po_processes, "po_threads": args.po_threads,
        "workers": args.workers, "concurrency": args.concurrency, "send_batch": args.send_batch,
        "out": os.path.relpath(args.out, ROOT) if args.out.startswith(str(ROOT)) else args.out,
        "body_kib": args.body_kib,
        "seconds": time.monotonic() - started,
    }
    text = table(rows)
    print("\n" + text + f"\n\nmachine: {m['nproc']} cores, {m['cpu']}, {m['ram_gib']} GiB; took {meta['seconds']:.0f}s", flush=True)
    (Path(args.out) / "results.json").write_text(json.dumps({"meta": meta, "rows": [{**asdict(r), "ratio": r.ratio} for r in rows]}, indent=1, default=str))
    (Path(args.out) / "table.md").write_text(text + "\n")
    if not args.no_docs:
        write_docs(Path(args.docs), rows=rows, meta=meta)
        print(f"rewrote {args.docs}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or None))
