"""`make test`: point the suite at the real PostgreSQL and Redis when they answer, then run pytest.

With NURTURE_REQUIRE_SERVICES=1 (CI) they are always used, so a missing service fails the tests
instead of skipping them. On a laptop without them, the tests that need them skip with a reason.
"""
from __future__ import annotations

import os
import socket
import sys

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
    return pytest.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
