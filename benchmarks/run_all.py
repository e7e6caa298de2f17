"""`make bench`: the engine and django-post-office doing the same job, in one run on one machine.

    .venv/bin/python -m benchmarks.run_all            # full sizes (tens of minutes on 2 cores)
    .venv/bin/python -m benchmarks.run_all --smoke    # tiny sizes: checks every part still runs

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

This module only orchestrates; the parts are modules of their own (each runs alone with
`python -m benchmarks.<part>` where that makes sense): engine_runs (the engine sending through real
workers), cpu_send (the engine's own CPU per email, in one process), postoffice_runs, planner_cases,
measure (/proc and the machine), profiles (py-spy) and report (the table and the docs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

from benchmarks import cpu_send, report
from benchmarks.bench_planner import ensure_database
from benchmarks.engine_runs import NO_CEILING, engine_send, load_library, reset_tables, setup_bench_database
from benchmarks.measure import machine, service_versions
from benchmarks.planner_cases import idle_only_case, planner_case
from benchmarks.postoffice_runs import POST_OFFICE_VERSION, postoffice_send, postoffice_venv, sample_body
from benchmarks.report import Row, table, write_docs

ROOT = Path(__file__).resolve().parent.parent

SIZES = {
    "full": {
        "emails": 3000, "workers": 2, "mailgun_emails": 20_000, "mailgun_batch": 500,
        "postmark_batch_emails": 20_000, "postmark_batch": 500, "cpu_emails": 5000,
        "rss_emails": [10_000, 100_000], "planner": [100_000, 1_000_000], "due_fraction": 0.01,
        "ceilings": [14, 500], "ceiling_seconds": 10, "latencies_ms": [0, 50], "idle_ticks": 20,
        "idle_only": [10_000_000],
    },
    "smoke": {
        "emails": 40, "workers": 1, "mailgun_emails": 60, "mailgun_batch": 20,
        "postmark_batch_emails": 60, "postmark_batch": 20, "cpu_emails": 60,
        "rss_emails": [30, 60], "planner": [2_000, 4_000], "due_fraction": 0.01,
        "ceilings": [14, 500], "ceiling_seconds": 0.1, "latencies_ms": [0, 50], "idle_ticks": 3,
        "idle_only": [3000],
    },
}



def run(args) -> list[Row]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    load_library()

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
            f"the fake provider's CPU (on the same cores) {engine['provider_cpu_ms_per_email']:.2f} ms per email; "
            f"accepted twice {engine['accepted_twice']}",
            {"engine": engine, "post_office": post},
        ))
        if latency == 0:
            floor = postoffice_send(args=args, python=python, body=body, latency_ms=0, emails=args.emails, floor=True)
            own = engine["cpu_ms_per_email"] - floor["cpu_ms_per_email"]
            rows.append(Row(
                "engine_cpu_per_email_0ms", "the engine's CPU per email less anymail's plain Postmark call alone (one call per email, latency 0 ms)",
                own, None, "ms", "", None,
                f"{engine['cpu_ms_per_email']:.2f} ms in all, less anymail's Postmark call alone "
                f"({floor['cpu_ms_per_email']:.2f} ms); the engine's own calls cost less than that plain call (shared "
                f"payloads, its session), so this understates its own part: the one-process rows time the call itself",
                {"engine": {k: engine[k] for k in ("cpu_seconds", "sent", "emails", "accepted_twice")}, "floor": floor},
            ))
            rows.append(Row(
                "cpu_per_email_0ms", "CPU per email sent, latency 0 ms (the sender's own processes; the fake provider apart)",
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
        f"the fake provider's {postmark_batch['provider_cpu_ms_per_email']:.3f} ms; "
        f"accepted twice {postmark_batch['accepted_twice']}", {"engine": postmark_batch},
    ))

    # 2c. the engine's own CPU per email in one process, anymail's call timed apart (cpu_send)
    for path, what in (("batch", "Postmark /email/batch"), ("single", "one call per email")):
        own = cpu_send.measure(emails=args.cpu_emails, path=path, redis_url=args.redis_url)
        rows.append(Row(
            f"engine_own_cpu_{path}",
            f"the engine's own CPU per email, the provider call excluded, measured in one process ({what}, latency 0, {args.cpu_emails:,} emails)",
            own["own_ms_per_email"], None, "ms", "< 0.5 ms", own["own_ms_per_email"] < 0.5,
            f"{own['cpu_ms_per_email']:.2f} ms in all, of which {own['call_ms_per_email']:.2f} ms inside anymail (payload, HTTP, answer)",
            {"cpu_send": own},
        ))
        print(f"  engine's own CPU per email ({path}): {own['own_ms_per_email']:.3f} ms of {own['cpu_ms_per_email']:.3f} ms", flush=True)

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
    parser.add_argument("--cpu-emails", type=int, help="emails in each in-process CPU measurement (cpu_send)")
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
        return report.main([args.rewrite_docs_from, "--docs", args.docs])
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
    args.postoffice_database_url = base + "_post_office"
    ensure_database(args.postoffice_database_url)
    args.redis_url = setup_bench_database()
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
