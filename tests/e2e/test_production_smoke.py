"""The production shape, started as docker-compose.yml describes it, without a container engine.

Each app service's command and environment come from docker-compose.yml (and the image's ENV and
build-time collectstatic from the Dockerfile). The compose host names are mapped to what this
machine has: `postgres` -> the local PostgreSQL (a database of this test's own), `redis` -> the
test Redis, `mailpit` -> an SMTP sink on a free port. The web service's gunicorn listens on a free
port. Then, with DEBUG off: the admin login page and its CSS answer 200, /healthz 200, a sign-up
brings a confirmation email to the sink, and confirming brings the first series email.
"""
from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
import yaml
from django.db import connection

from support.smtp_sink import SmtpSink
from support.workers import CeleryProcess
from support.web import WebServer

pytestmark = [pytest.mark.e2e, pytest.mark.services]

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "web", "worker", "worker-service", "beat")
COMPOSE_HOSTS = ("postgres", "redis", "mailpit")
DAY_SECONDS = 4  # short series days, so the first series email follows the confirmation in seconds


def compose_services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def dockerfile_env() -> dict[str, str]:
    """The image's ENV lines (KEY=value pairs, continued with backslashes)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(pair.split("=", 1) for pair in shlex.split(line[4:])))
    return env


def dockerfile_build_commands(marker: str) -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line[4:].strip() for line in text.splitlines() if line.startswith("RUN ") and marker in line]


@pytest.fixture
def smoke_database(postgres):
    """An empty database of this test's own on the test server (the migrate service fills it)."""
    settings_dict = connection.settings_dict
    name = f"{settings_dict['NAME']}_smoke"
    admin_dsn = psycopg.conninfo.make_conninfo(
        host=settings_dict.get("HOST") or "127.0.0.1", port=settings_dict.get("PORT") or 5432,
        user=settings_dict.get("USER") or "postgres", password=settings_dict.get("PASSWORD") or None, dbname="postgres",
    )

    def drop():
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    drop()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host, port = settings_dict.get("HOST") or "127.0.0.1", settings_dict.get("PORT") or 5432
    yield f"postgres://{user}{password}@{host}:{port}/{name}"
    drop()


# What an operator puts in the environment (or .env) for compose's ${VAR:?...} references.
OPERATOR_ENV = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}


def interpolate(value: str) -> str:
    """compose's ${VAR}, ${VAR:-default} and ${VAR:?error} from OPERATOR_ENV."""
    def one(match):
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if name in OPERATOR_ENV:
            return OPERATOR_ENV[name]
        assert op != ":?", f"docker-compose.yml needs {name} from the environment: {arg}"
        return arg
    return re.sub(r"\$\{([A-Za-z0-9_]+)(?:(:[?-])([^}]*))?\}", one, value)


def service_env(service: dict, *, database_url: str, redis_url: str, smtp_port: int, var_dir: Path) -> dict:
    """The service's compose environment over the image's ENV, with compose host names mapped."""
    base = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "NURTURE_", "CELERY_", "EMAIL_", "ANYMAIL_", "DATABASE_", "LOG_", "SENTRY_"))
    }
    env = {**base, **dockerfile_env(), **{k: interpolate(str(v)) for k, v in service["environment"].items()}}
    env.update({
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "NURTURE_VAR_DIR": str(var_dir),  # the image's /app/var
        "NURTURE_DAY_SECONDS": str(DAY_SECONDS),
        # The image's interpreter and scripts (python, gunicorn, celery) are this virtualenv's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
    })
    named = {k: v for k, v in env.items() if k in service["environment"] and (v in COMPOSE_HOSTS or urlsplit(v).hostname in COMPOSE_HOSTS)}
    assert not named, f"compose host names left unmapped: {named}"
    return env


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def test_compose_stack_serves_signs_up_confirms_and_sends(smoke_database, redis_url, tmp_path):
    services = compose_services()
    assert set(APP_SERVICES) <= set(services)
    var_dir = tmp_path / "var"
    logs = tmp_path / "logs"
    logs.mkdir()
    started: list = []
    with SmtpSink() as sink:
        env = {name: service_env(services[name], database_url=smoke_database, redis_url=redis_url,
                                 smtp_port=sink.port, var_dir=var_dir) for name in APP_SERVICES}
        assert env["web"]["DJANGO_DEBUG"] == "0"
        try:
            # The image build: collectstatic, as the Dockerfile runs it.
            (collect,) = dockerfile_build_commands("collectstatic")
            built = subprocess.run(collect, shell=True, cwd=ROOT, env=env["web"], capture_output=True, text=True, timeout=300)
            assert built.returncode == 0, built.stderr[-3000:]

            # The one-shot migrate service; the others only start once it succeeded.
            migrate = subprocess.run(shlex.split(services["migrate"]["command"]), cwd=ROOT, env=env["migrate"],
                                     capture_output=True, text=True, timeout=600)
            assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-3000:]
            for name in ("web", "worker", "worker-service", "beat"):
                assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"

            # The operator's step after their clinicians reviewed the starter library (README, "Approving the
            # starter library"): with DEBUG off, nothing no named reviewer approved is ever sent.
            operator_env = {**env["migrate"], "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(24)}
            for argv in (["createsuperuser", "--noinput", "--username", "dr-smoke", "--email", "dr-smoke@example.org"],
                         ["approve_articles", "--reviewer", "dr-smoke", "--role", "oncology nurse"]):
                step = subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=operator_env,
                                      capture_output=True, text=True, timeout=300)
                assert step.returncode == 0, step.stdout[-2000:] + step.stderr[-3000:]

            # Two web replicas at once: they only serve (no start-up writes), so neither races the other.
            web, replica = (WebServer(env["web"], logs / f"web{n}.log", command=shlex.split(services["web"]["command"])) for n in (1, 2))
            started += [web, replica]
            for server in (web.launch(), replica.launch()):
                server.wait_ready()
            for name in ("worker", "worker-service", "beat"):
                kind = "beat" if name == "beat" else "worker"
                argv = shlex.split(services[name]["command"])
                started.append(CeleryProcess(kind, name, env[name], logs, argv=argv).start(ready_timeout=90))

            http = requests.Session()
            login = http.get(web.url + "/admin/login/", timeout=30)
            assert login.status_code == 200
            css = re.findall(r'href="(/static/admin/css/[^"]+\.css)"', login.text)
            assert css and all(re.search(r"\.[0-9a-f]{12}\.css$", href) for href in css), css  # hashed names
            stylesheet = http.get(web.url + css[0], timeout=30)
            assert stylesheet.status_code == 200 and stylesheet.headers["Content-Type"].startswith("text/css")
            assert "immutable" in stylesheet.headers.get("Cache-Control", "")
            assert http.get(web.url + "/healthz", timeout=30).status_code == 200
            assert http.get(replica.url + "/healthz", timeout=30).status_code == 200

            signup = http.post(web.url + "/", data={
                "email": "smoke@example.org", "first_name": "Sam", "stage": "in_treatment", "language": "en",
                "consent": "on", "time_zone": "UTC",
            }, allow_redirects=False, timeout=30)
            assert signup.status_code == 302, signup.text[:2000]

            confirmation = sink.wait_for(lambda m: m["To"] == "smoke@example.org", timeout=90, what="confirmation email")
            site = env["web"]["SITE_URL"]
            link = re.search(re.escape(site) + r"(/confirm/[^/\s]+/)", text_of(confirmation)).group(1)
            page = http.get(web.url + link, timeout=30)
            assert page.status_code == 200
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            confirmed = http.post(web.url + link, data={"csrfmiddlewaretoken": token}, timeout=30,
                                  headers={"Referer": web.url + link})
            assert confirmed.status_code == 200, confirmed.text[:2000]

            first = sink.wait_for(
                lambda m: m["To"] == "smoke@example.org" and m is not confirmation and m["List-Unsubscribe"],
                timeout=120, what="first series email",
            )
            assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert urlsplit(site).hostname in first["List-Unsubscribe"]
        finally:
            for process in reversed(started):
                process.stop()

    for process in started:
        log = process.log()
        assert "Traceback" not in log, f"{process.log_path.name}:\n{log[-4000:]}"
    # LOG_FORMAT=json (compose): the worker's lines are JSON objects with the task id in them.
    worker_log = started[2].log()
    assert re.search(r'^\{.*"task_id": "[0-9a-f-]{36}".*\}$', worker_log, re.M), worker_log[-3000:]
