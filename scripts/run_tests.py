"""`make test`: point the suite at the real PostgreSQL and Redis when they answer, then run pytest.

With NURTURE_REQUIRE_SERVICES=1 (CI) they are always used, so a missing service fails the tests
instead of skipping them. On a laptop without them, the tests that need them skip with a reason.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    required = os.environ.get("NURTURE_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}
    if "DATABASE_URL" not in os.environ and (required or answers("127.0.0.1", 5432)):
        os.environ["DATABASE_URL"] = DEFAULT_DATABASE_URL
    if "NURTURE_TEST_REDIS_URL" not in os.environ and (required or answers("127.0.0.1", 6379)):
        os.environ["NURTURE_TEST_REDIS_URL"] = DEFAULT_REDIS_URL
    # Live-server request threads would otherwise keep their connections open past the test run,
    # and PostgreSQL refuses to drop a test database that still has sessions.
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
    print(
        f"make test: database={os.environ.get('DATABASE_URL', 'sqlite (default)')} "
        f"redis={os.environ.get('NURTURE_TEST_REDIS_URL', 'none: tests that need it will skip')} "
        f"require_services={required}",
        flush=True,
    )
    if sys.argv[1:]:
        return pytest.main(sys.argv[1:])
    return run_whole_suite()


def run_whole_suite() -> int:
    """The whole suite in two runs side by side: everything but the end-to-end tests spread over
    NURTURE_TEST_WORKERS pytest-xdist workers (default 2; each has its own test database and Redis
    database), and the end-to-end tests (real worker processes, fault injection) one at a time in the
    background, in a test database and Redis database of their own. The end-to-end tests mostly wait
    on real seconds (one-second series days, backoffs, a restarted broker), so running them beside
    the others costs little CPU and saves their whole duration; what they assert about time has
    several times the slack a shared CPU takes. NURTURE_TEST_OVERLAP=0 runs them after the
    others instead, as does a run without xdist workers."""
    workers = os.environ.get("NURTURE_TEST_WORKERS", "2")
    parallel = ["-n", workers] if workers not in {"0", "1"} else []
    runs = [[*parallel, "-m", "not e2e"], ["-m", "e2e"]]
    # Side by side only with xdist workers: pytest-django then names their test databases apart
    # (test_<name>_gw0, ...) from the end-to-end run's (test_<name>).
    if parallel and os.environ.get("NURTURE_TEST_OVERLAP", "1").lower() not in {"0", "false", "no"}:
        return run_side_by_side(runs[0], runs[1], xdist_workers=int(workers))
    codes = []
    for args in runs:
        print(f"make test: pytest {' '.join(args)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", "pytest", *args])
        print(f"make test: pytest {' '.join(args)} exited {code} after {time.monotonic() - started:.0f} s", flush=True)
        codes.append(0 if code == pytest.ExitCode.NO_TESTS_COLLECTED else code)
    return max(codes)


def redis_url_below(url: str, count: int) -> str:
    """The Redis database `count` below the URL's: the one after the xdist workers' (which count down
    from it, tests/conftest.py), so the two runs never empty each other's."""
    base, _, db = url.rpartition("/")
    return f"{base}/{(int(db or 0) - count) % 16}"


def run_side_by_side(first: list[str], second: list[str], *, xdist_workers: int) -> int:
    """`second` in the background (its own test database: pytest-django names the xdist workers'
    apart; its own Redis database), its output kept in a file and printed after `first`'s."""
    import tempfile

    env = dict(os.environ)
    if "NURTURE_TEST_REDIS_URL" in env:
        env["NURTURE_TEST_REDIS_URL"] = redis_url_below(env["NURTURE_TEST_REDIS_URL"], xdist_workers)
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        print(f"make test: pytest {' '.join(second)} in the background (its output follows the other run's)",
              flush=True)
        background = subprocess.Popen([sys.executable, "-m", "pytest", *second], env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
        print(f"make test: pytest {' '.join(first)}", flush=True)
        code_first = subprocess.call([sys.executable, "-m", "pytest", *first])
        print(f"make test: pytest {' '.join(first)} exited {code_first} after {time.monotonic() - started:.0f} s",
              flush=True)
        code_second = background.wait()
        log.seek(0)
        print(f"make test: pytest {' '.join(second)}, run in the background:", flush=True)
        sys.stdout.write(log.read())
    print(f"make test: pytest {' '.join(second)} exited {code_second} after {time.monotonic() - started:.0f} s",
          flush=True)
    return max(0 if code == pytest.ExitCode.NO_TESTS_COLLECTED else code for code in (code_first, code_second))


if __name__ == "__main__":
    sys.exit(main())
