"""Real Celery processes for end-to-end tests and benchmarks: workers and beat as subprocesses over
real Redis and the database in use (in tests, the pytest-django one: use transactional_db so they see
committed rows)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url_for_subprocess() -> str:
    """The URL of the database this test is using (the test database, not the configured one)."""
    s = connection.settings_dict
    if connection.vendor != "postgresql":
        raise RuntimeError("subprocess workers need PostgreSQL (SQLite test databases are in memory)")
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{s['NAME']}"


def subprocess_env(*, broker_url: str, outbox_dir: Path, day_seconds: int, extra: dict | None = None) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "NURTURE_", "CELERY_", "EMAIL_", "ANYMAIL_"))
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url_for_subprocess(),
            "CELERY_BROKER_URL": broker_url,
            "NURTURE_DAY_SECONDS": str(day_seconds),
            "EMAIL_BACKEND": "nurture.mail.OutboxEmailBackend",
            "NURTURE_OUTBOX_DIR": str(outbox_dir),
            "SITE_URL": "https://guide.example.org",
            "PYTHONUNBUFFERED": "1",
            # "Has anything changed?" emails off unless a test asks (short test days would send them
            # between the series emails a test counts).
            "NURTURE_CHECKIN_WEEKS": "",
            # The daytime send window open all day, as tests/conftest.py opens it in process: with
            # real days (86400) the production 09-17 window would defer every email planned at night.
            "NURTURE_SEND_WINDOW_START_HOUR": "0",
            "NURTURE_SEND_WINDOW_END_HOUR": "24",
        }
    )
    env.update(extra or {})
    return env


def stop_process_group(proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """SIGTERM a process started with start_new_session=True and its children; SIGKILL after `timeout`."""
    if not proc or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class CeleryProcess:
    """One `celery worker` or `celery beat` process, logging to a file; stopped or killed on demand.
    `argv` runs that exact command line instead of the test defaults (e.g. a compose service's)."""

    def __init__(self, kind: str, name: str, env: dict, log_dir: Path, args: list[str] | None = None,
                 argv: list[str] | None = None):
        self.kind, self.name, self.env = kind, name, env
        self.log_path = log_dir / f"{name}.log"
        self.args = args or []
        self.argv = argv
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if self.argv:
            return self.argv
        base = [sys.executable, "-m", "celery", "-A", "config"]
        if self.kind == "worker":
            return base + [
                "worker", "-n", f"{self.name}@%h", "--loglevel=INFO", "--pool=prefork", "--concurrency=1",
                "--without-gossip", "--without-mingle", "--without-heartbeat", *self.args,
            ]
        return base + [
            "beat", "--loglevel=INFO", "-S", "django_celery_beat.schedulers:DatabaseScheduler",
            "--max-interval=1", "--pidfile=", *self.args,
        ]

    def start(self, ready_timeout: float = 60.0) -> "CeleryProcess":
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        marker = "ready." if self.kind == "worker" else "beat: Starting..."
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if marker in self.log():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready in {ready_timeout}s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group (the main process and its pool children): no clean-up runs."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        stop_process_group(self.proc, timeout)


def stop_all(processes, timeout: float = 20.0) -> None:
    """Stop several processes as stop_process_group stops one, at once: every group gets SIGTERM
    first, then each is waited for (SIGKILL once `timeout` has passed), so their warm shutdowns
    overlap instead of running one after another."""
    running = [process.proc for process in processes if process.proc and process.proc.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_for(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    """Poll until predicate() is truthy; return its value. Bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {message}")


def use_broker_in_this_process(broker_url: str) -> None:
    """Make .delay() in the test process publish to the real broker (unit tests run eagerly)."""
    from config.celery import app

    app.conf.task_always_eager = False
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = {"visibility_timeout": 3600}
    # Drop any pool built for an earlier URL (closing it would poison kombu's shared registry).
    app._pool = None
    app.amqp._producer_pool = None


# Short provider timeouts and retries, so fault tests settle in seconds; the timeout still long
# enough that a loaded CI machine's slow answer is not taken for a withheld one.
FAST_RETRY_ENV = {"EMAIL_TIMEOUT": "2", "NURTURE_RETRY_BASE_SECONDS": "0.2", "NURTURE_RETRY_MAX_SECONDS": "1"}


@contextlib.contextmanager
def provider_workers(*, provider, broker_url: str, log_dir: Path, day_seconds: int, **base_env):
    """Yields worker(name, **env) that starts a worker wired to the fake `provider`; every worker
    started is stopped on exit."""
    started: list[CeleryProcess] = []

    def worker(name: str, **extra) -> CeleryProcess:
        env = subprocess_env(
            broker_url=broker_url,
            outbox_dir=log_dir / "outbox",
            day_seconds=day_seconds,
            extra={**provider.anymail_env(), **FAST_RETRY_ENV, **{k: str(v) for k, v in {**base_env, **extra}.items()}},
        )
        process = CeleryProcess("worker", name, env, log_dir)
        started.append(process)
        return process.start()

    try:
        yield worker
    finally:
        stop_all(started)
