"""django-post-office doing the engine's job, in a virtual environment of its own
(var/bench/postoffice-venv: django-post-office pinned, the project's Django and anymail; never a
dependency of the project), against a fake Postmark in this process. The job itself is
postoffice_job.py, run by path with that venv's Python (it imports nothing of the project)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.engine_runs import plan_emails
from benchmarks.measure import busiest_second

JOB = Path(__file__).resolve().parent / "postoffice_job.py"
POST_OFFICE_VERSION = "3.12.0"  # its latest release when this was written; --post-office-version to change


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
            [str(python), str(JOB), "--database-url", args.postoffice_database_url,
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
