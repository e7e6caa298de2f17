"""The secret key seals every link in every email: with DEBUG off, start-up refuses a
key anyone could know, naming DJANGO_SECRET_KEY; compose never holds a literal key; and
`check --deploy` with the documented production settings is clean but for justified warnings."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management.utils import get_random_secret_key

ROOT = Path(__file__).resolve().parents[2]
# A key that looks strong but is written in this file, so it is public.
PUBLISHED_KEY = "published-in-the-repository-so-not-secret-0123456789abcdefghij"

# Warnings `check --deploy` may still print with the documented production settings, each
# justified in docs/security.md ("Public surface", "check --deploy"). Nothing else may appear.
JUSTIFIED_DEPLOY_WARNINGS = {
    "security.W004",  # HSTS: set by the production runtime, at the proxy until then
    "security.W008",  # SSL redirect: done by the TLS-terminating proxy in front of gunicorn
    "security.W005",  # HSTS includeSubDomains: the organisation decides for its whole domain (docs/operations.md)
    "security.W021",  # HSTS preload: likewise
}

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "SITE_URL": "https://guide.example.org",
    "DJANGO_ALLOWED_HOSTS": "guide.example.org",
    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "ANYMAIL_POSTMARK_SERVER_TOKEN": "token",
    "ANYMAIL_WEBHOOK_SECRET": "hook:" + "w" * 24,
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "NURTURE_ORG_NAME": "Cancer Information Service",
    "NURTURE_ORG_ADDRESS": "1 High Street, Leeds",
    "NURTURE_ORG_HELPLINE": "0800 123 456",
    "NURTURE_TRUSTED_PROXY_HEADER": "X-Forwarded-For",  # behind the TLS proxy (nurture.W032)
}


def run_check(env_overrides: dict, *args: str) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NURTURE_", "DJANGO_", "ANYMAIL_"))}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "key, why",
    [
        (None, "missing"),
        ("dev-only-insecure-key-set-DJANGO_SECRET_KEY", "development key"),
        ("change-me-in-production", "development key"),
        ("short-but-random-Zq8#", "shorter than 50"),
        (PUBLISHED_KEY, "appears in the repository (tests/config/test_secret_key.py)"),
    ],
)
def test_start_up_refuses_a_key_anyone_could_know(key, why):
    env = {"DJANGO_DEBUG": "0", **({"DJANGO_SECRET_KEY": key} if key else {})}
    result = run_check(env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY: (nurture.E030)" in result.stderr and why in result.stderr


def test_a_fresh_random_key_passes_and_debug_is_not_held_to_it():
    assert "nurture.E030" not in run_check({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": get_random_secret_key()}).stderr
    assert run_check({"DJANGO_DEBUG": "1"}).returncode == 0


def test_a_fallback_key_is_held_to_the_same_rules():
    result = run_check({
        "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": get_random_secret_key(), "DJANGO_SECRET_KEY_FALLBACKS": "change-me-in-production",
    })
    assert "DJANGO_SECRET_KEY_FALLBACKS: (nurture.E031)" in result.stderr


def test_compose_takes_the_key_from_the_environment():
    text = (ROOT / "docker-compose.yml").read_text()
    environment = yaml.safe_load(text)["x-app"]["environment"]
    assert re.fullmatch(r"\$\{DJANGO_SECRET_KEY:\?.+\}", environment["DJANGO_SECRET_KEY"])
    assert "change-me" not in text


def test_check_deploy_with_the_documented_production_settings_prints_only_justified_warnings():
    result = run_check({**PRODUCTION, "DJANGO_SECRET_KEY": get_random_secret_key()}, "--deploy")
    ids = set(re.findall(r"\(([\w.]+\.[EW]\d+)\)", result.stderr))
    assert not {i for i in ids if ".E" in i}, result.stderr
    assert ids <= JUSTIFIED_DEPLOY_WARNINGS, result.stderr
    assert all(i in (ROOT / "docs" / "security.md").read_text() for i in JUSTIFIED_DEPLOY_WARNINGS)
