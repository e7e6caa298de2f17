"""The production web server (gunicorn, gunicorn.conf.py) as a subprocess on a free loopback port,
and a small HTTP load generator. Used by the connection-bound load test, the production smoke test
and benchmarks/bench_http.py."""
from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from support.workers import stop_process_group

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_command(args: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", *(args or ["config.wsgi:application"])]


class WebServer:
    """gunicorn started with `command` (argv) and `env`; NURTURE_WEB_BIND is set to a free port."""

    def __init__(self, env: dict, log_path: Path, command: list[str] | None = None, port: int | None = None):
        self.port = port or free_port()
        self.env = {**env, "NURTURE_WEB_BIND": f"127.0.0.1:{self.port}"}
        self.command = command or gunicorn_command()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 60.0) -> "WebServer":
        return self.launch().wait_ready(ready_timeout)

    def launch(self) -> "WebServer":
        """Start the process without waiting for it to answer (see wait_ready)."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def wait_ready(self, ready_timeout: float = 60.0) -> "WebServer":
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                request("GET", self.url + "/healthz", timeout=5)
                return self  # any answer: the workers are serving
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"gunicorn not answering in {ready_timeout}s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> None:
        stop_process_group(self.proc, timeout)


def request(method: str, url: str, *, body: dict | None = None, headers: dict | None = None, timeout: float = 30.0):
    """One request on a fresh connection; returns (status, headers, body bytes). No redirects followed."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        data = urlencode(body).encode() if body is not None else None
        all_headers = {"Host": "127.0.0.1", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/", body=data, headers=all_headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@dataclass
class LoadResult:
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def rate(self, name: str | None = None) -> float:
        count = len(self.latencies.get(name, [])) if name else self.requests
        return count / self.seconds if self.seconds else 0.0

    def percentile(self, name: str, p: float) -> float:
        values = sorted(self.latencies.get(name, []))
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run_load(
    base_url: str, scenarios: dict, *, clients: int, seconds: float, timeout: float = 60.0, headers: dict | None = None
) -> LoadResult:
    """`clients` threads, each looping over `scenarios` ({name: fn(n) -> (method, path, body)}) in
    turn for `seconds`, one keep-alive connection per thread, sending `headers` with each request. Bounded in time:
    every thread stops at the deadline (plus at most one request's timeout)."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    result = LoadResult(latencies={name: [] for name in scenarios})
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    names = list(scenarios)

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        n = 0
        while time.monotonic() < deadline:
            name = names[(index + n) % len(names)]
            method, path, body = scenarios[name](index * 1_000_000 + n)
            n += 1
            data = urlencode(body).encode() if body is not None else None
            sent_headers = {"Host": "127.0.0.1", **(headers or {})}
            if data is not None:
                sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
            started = time.perf_counter()
            try:
                conn.request(method, path, body=data, headers=sent_headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                with lock:
                    result.errors[type(exc).__name__] += 1
                continue
            elapsed = time.perf_counter() - started
            with lock:
                result.statuses[status] += 1
                result.latencies[name].append(elapsed)
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + timeout + 5)
    result.seconds = time.monotonic() - started
    return result


def signup_form(n: int, *, stage: str = "in_treatment") -> tuple[str, str, dict]:
    """The public sign-up form, as the organisation's own site would post it (a new address each time)."""
    return "POST", "/", {
        "email": f"load-{n}@example.org", "first_name": "Load", "stage": stage, "language": "en",
        "consent": "on", "time_zone": "Europe/London",
    }
