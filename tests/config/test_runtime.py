"""The production runtime's settings: TLS-proxy security, `check --deploy` with the
documented production environment, LOG_FORMAT=json, optional Sentry and its scrubber, and the
quiet periodic-task logs."""
from __future__ import annotations

import gzip
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.logs import QuietPeriodicTasks
from config.sentry import scrub
from nurture.log_redaction import RedactAddresses

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "NURTURE_", "SENTRY_", "LOG_", "SITE_URL"))}
    env.update({"PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "config.settings", **overrides})
    return env


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(**env), capture_output=True, text=True, timeout=120)


def settings_values(names: list[str], **env) -> dict:
    code = "import json; from django.conf import settings; print(json.dumps({n: getattr(settings, n) for n in %r}))" % names
    result = run_python(code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- behind a TLS proxy -------------------------------------------------------------------------


def test_https_site_behind_a_proxy_redirects_sends_hsts_and_marks_cookies_secure():
    values = settings_values(
        ["SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"],
        SITE_URL="https://guide.example.org", DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    assert values == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"], "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000, "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
    }


def test_without_a_proxy_header_an_https_site_does_not_redirect_to_itself():
    # Django cannot tell the scheme: redirecting would loop. Cookies and HSTS still follow SITE_URL.
    values = settings_values(["SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE"], SITE_URL="https://guide.example.org")
    assert values == {"SECURE_PROXY_SSL_HEADER": None, "SECURE_SSL_REDIRECT": False, "SESSION_COOKIE_SECURE": True}
    local = settings_values(["SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"], DJANGO_DEBUG="1")
    assert local == {"SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 0, "SESSION_COOKIE_SECURE": False}


def test_a_bad_proxy_header_name_stops_start_up_naming_the_variable():
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=clean_env(DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https"))
    assert result.returncode != 0
    assert "DJANGO_SECURE_PROXY_SSL_HEADER: (nurture.E001)" in result.stderr


@pytest.mark.django_db
def test_requests_through_the_proxy(client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    plain = client.get("/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/"
    secure = client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000"
    # Health checks from inside the network use plain HTTP and are not redirected.
    assert client.get("/healthz").status_code in (200, 503)


def production_environment() -> dict[str, str]:
    """The environment block in docs/operations.md ("Production environment")."""
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"<!-- production-env -->\s*```sh\n(.*?)```", text, re.S).group(1)
    return dict(line.split("=", 1) for line in block.splitlines() if line and not line.startswith("#"))


def justified_check_ids() -> set[str]:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("<!-- justified-checks -->", 1)[1].split("<!-- /justified-checks -->", 1)[0]
    return set(re.findall(r"`((?:security|nurture)\.[WE]\d+)`", section))


def test_check_deploy_with_the_documented_production_environment_says_only_what_the_docs_justify():
    # `<...>` in the docs is the operator's own value; a secret key written in the docs is public (nurture.E030).
    env = {k: ("x" + secrets.token_urlsafe(60) if v.startswith("<") else v) for k, v in production_environment().items()}
    assert env["SITE_URL"].startswith("https://") and env["DJANGO_SECURE_PROXY_SSL_HEADER"]
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=clean_env(**env),
                            capture_output=True, text=True, timeout=120)
    said = set(re.findall(r"\(((?:security|nurture|[a-z_]+)\.[WE]\d+)\)", result.stdout + result.stderr))
    assert result.returncode == 0, result.stderr
    assert said <= justified_check_ids(), (said - justified_check_ids(), result.stderr)


# --- logs ---------------------------------------------------------------------------------------

LOG_SCRIPT = """
import logging, django
django.setup()
from config.celery import app
app.conf.task_always_eager = True

@app.task(name="nurture.test_logging")
def work():
    logging.getLogger("nurture.sending.pipeline").warning("send to maria@example.org failed", extra={"delivery_id": 42})

logging.getLogger("nurture.web").info("plain line")
work.apply(task_id="0f0e0d0c-0000-4000-8000-000000000001")
"""


def test_log_format_json_gives_one_object_per_line_with_task_and_delivery_ids_and_no_address():
    result = run_python(LOG_SCRIPT, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    by_message = {line["message"]: line for line in lines}
    assert by_message["plain line"]["level"] == "INFO" and by_message["plain line"]["logger"] == "nurture.web"
    sent = by_message["send to [address] failed"]
    assert sent["task_id"] == "0f0e0d0c-0000-4000-8000-000000000001" and sent["task_name"] == "nurture.test_logging"
    assert sent["delivery_id"] == 42 and sent["level"] == "WARNING"
    assert "maria@example.org" not in result.stderr


def test_plain_text_stays_the_default():
    result = run_python(LOG_SCRIPT)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\S+ \S+ WARNING nurture.sending.pipeline send to \[address\] failed$", result.stderr, re.M), result.stderr
    assert not any(line.startswith("{") for line in result.stderr.splitlines())


def test_a_bad_log_format_stops_start_up_naming_the_variable():
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=clean_env(LOG_FORMAT="xml"))
    assert result.returncode != 0 and "LOG_FORMAT: (nurture.E001)" in result.stderr


def record(name: str, msg: str, args, level=logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


@pytest.mark.django_db
def test_periodic_tasks_that_did_nothing_log_at_debug_and_the_rest_stays_at_info():
    quiet = QuietPeriodicTasks()
    success = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"
    nothing = record("celery.app.trace", success, ({"name": "nurture.plan_due_deliveries", "id": "x", "runtime": 0.01, "return_value": "0"},))
    assert quiet.filter(nothing) is False and nothing.levelno == logging.DEBUG  # dropped at INFO
    nothing_dict = record("celery.app.trace", success, ({"name": "nurture.reconcile_deliveries", "id": "x", "runtime": 0.1,
                                                         "return_value": "{'marked_sent': 0, 'requeued': 0}"},))
    assert quiet.filter(nothing_dict) is False
    planned = record("celery.app.trace", success, ({"name": "nurture.plan_due_deliveries", "id": "x", "runtime": 0.2, "return_value": "12"},))
    assert quiet.filter(planned) is True and planned.levelno == logging.INFO
    send = record("celery.app.trace", success, ({"name": "nurture.send_deliveries", "id": "x", "runtime": 0.2, "return_value": "0"},))
    assert quiet.filter(send) is True  # not a periodic task: always said
    received = record("celery.worker.strategy", "Task %(name)s[%(id)s] received",
                      ({"name": "nurture.plan_due_deliveries", "id": "x", "args": "()", "kwargs": "{}", "eta": None},))
    assert quiet.filter(received) is False
    beat = record("celery.beat", "Scheduler: Sending due task %s (%s)", ("Plan due deliveries", "nurture.plan_due_deliveries"))
    assert quiet.filter(beat) is False
    warning = record("celery.app.trace", success, ({"name": "nurture.plan_due_deliveries", "id": "x", "runtime": 0, "return_value": "0"},), logging.WARNING)
    assert quiet.filter(warning) is True


def test_addresses_are_redacted_from_log_messages_and_tracebacks():
    redact = RedactAddresses()
    line = record("nurture.x", "refused %s by %s", ("maria@example.org", "smtp"))
    assert redact.filter(line) and line.getMessage() == "refused [address] by smtp"
    try:
        raise ValueError("recipient jo.smith+x@mail.example.co.uk refused")
    except ValueError:
        failed = logging.LogRecord("nurture.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    redact.filter(failed)
    assert "jo.smith" not in logging.Formatter().format(failed) and "[address] refused" in failed.exc_text


# --- Sentry ---------------------------------------------------------------------------------------


def test_without_sentry_dsn_sentry_sdk_is_never_imported():
    code = "import sys, django; django.setup(); import config.urls; from django.test import Client; " \
           "Client().get('/healthz'); print('sentry_sdk' in sys.modules)"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


class Envelopes(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        Envelopes.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


SENTRY_SCRIPT = """
import logging, django
django.setup()
import sentry_sdk
logging.getLogger("nurture.sending.pipeline").error(
    "send failed for maria@example.org (stage in_treatment) link /preferences/abc.DEF-123/"
)
try:
    stage = "in_remission"
    raise RuntimeError(f"could not plan maria@example.org in {stage}")
except RuntimeError:
    sentry_sdk.capture_exception()
sentry_sdk.flush(timeout=10)
"""


def test_with_sentry_dsn_reports_are_sent_without_addresses_stages_or_link_tokens():
    Envelopes.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Envelopes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
        result = run_python(SENTRY_SCRIPT, SENTRY_DSN=dsn)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    sent = b"\n".join(Envelopes.received).decode(errors="replace")
    assert "could not plan [address] in [stage]" in sent  # the exception arrived, scrubbed
    assert "send failed for [address] (stage [stage])" in sent and "/preferences/[token]" in sent  # the error log too
    for secret in ("maria@example.org", "in_treatment", "in_remission", "abc.DEF-123"):
        assert secret not in sent


def test_scrub_drops_request_bodies_and_sensitive_fields_and_rewrites_text():
    event = {
        "request": {"url": "https://guide.example.org/confirm/tok123/", "data": {"email": "a@b.org", "stage": "in_treatment"},
                    "cookies": {"sessionid": "s"}, "method": "POST"},
        "extra": {"stage": "in_remission", "subscriber_id": 7, "note": "In treatment since May"},
        "breadcrumbs": {"values": [{"message": "SELECT ... WHERE email = 'x@y.org'", "category": "query"}]},
        "tags": {"first_name": "María"},
    }
    cleaned = scrub(event)
    assert cleaned["request"] == {"url": "https://guide.example.org/confirm/[token]/", "method": "POST"}
    assert cleaned["extra"] == {"stage": "[removed]", "subscriber_id": 7, "note": "[stage] since May"}
    assert cleaned["breadcrumbs"]["values"][0]["message"] == "SELECT ... WHERE email = '[address]'"
    assert cleaned["tags"] == {"first_name": "[removed]"}
