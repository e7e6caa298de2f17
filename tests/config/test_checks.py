"""System checks on settings: a bad value stops start-up naming the variable (`manage.py check`)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(env_overrides: dict) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "name, value",
    [
        ("NURTURE_DAY_SECONDS", "soon"),
        ("NURTURE_DAY_SECONDS", "0"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("CELERY_BROKER_URL", "carrier-pigeon://x"),
        ("EMAIL_PORT", "eighty"),
        ("EMAIL_USE_TLS", "perhaps"),
        ("SITE_URL", "guide.example.org"),
    ],
)
def test_bad_setting_stops_start_up_naming_the_variable(name, value):
    result = run_check({name: value})
    assert result.returncode != 0
    assert f"{name}: (nurture.E001)" in result.stderr


def test_good_settings_pass_the_checks():
    result = run_check({"NURTURE_DAY_SECONDS": "5", "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_DEBUG": "1"})
    assert result.returncode == 0, result.stderr


def test_outbox_email_backend_outside_debug_is_warned_about():
    result = run_check({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50})
    assert "EMAIL_BACKEND: (nurture.W003)" in result.stderr
    quiet = run_check({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50, "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend"})
    assert "nurture.W003" not in quiet.stderr


def test_organisation_placeholders_are_warned_about_in_production():
    result = run_check({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50})
    for name in ("NURTURE_ORG_NAME", "NURTURE_ORG_ADDRESS", "NURTURE_ORG_HELPLINE"):
        assert f"{name}: (nurture.W002)" in result.stderr
    configured = run_check({
        "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50, "NURTURE_ORG_NAME": "Cancer Information Service",
        "NURTURE_ORG_ADDRESS": "1 High Street, Leeds", "NURTURE_ORG_HELPLINE": "0800 123 456",
    })
    assert "nurture.W002" not in configured.stderr


@pytest.mark.parametrize(
    "site_url, ssl_header, trusted, warned",
    [
        ("https://guide.example.org", None, "", True),
        ("http://localhost:8000", ("HTTP_X_FORWARDED_PROTO", "https"), "", True),
        ("https://guide.example.org", ("HTTP_X_FORWARDED_PROTO", "https"), "X-Forwarded-For", False),
        ("http://localhost:8000", None, "", False),
    ],
)
def test_behind_a_proxy_without_the_trusted_client_address_header_the_check_warns(settings, site_url, ssl_header, trusted, warned):
    """Behind the documented proxy every client would share the proxy's address: the check says so."""
    from config.checks import trusted_proxy

    settings.DEBUG = False
    settings.SITE_URL, settings.SECURE_PROXY_SSL_HEADER, settings.NURTURE_TRUSTED_PROXY_HEADER = site_url, ssl_header, trusted
    assert [w.id for w in trusted_proxy()] == (["nurture.W032"] if warned else [])


def _service_ceiling(env_overrides: dict) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update({"DJANGO_DEBUG": "1", **env_overrides})
    code = "import django; django.setup(); from django.conf import settings; print(settings.NURTURE_SERVICE_EMAILS_PER_HOUR)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
                          capture_output=True, text=True, timeout=120)


def test_the_service_emails_ceiling_reads_its_former_name_while_the_new_one_is_unset_and_warns():
    assert _service_ceiling({}).stdout.strip() == "300"
    assert _service_ceiling({"NURTURE_CONFIRMATIONS_PER_HOUR": "40"}).stdout.strip() == "40"
    both = {"NURTURE_CONFIRMATIONS_PER_HOUR": "40", "NURTURE_SERVICE_EMAILS_PER_HOUR": "70"}
    assert _service_ceiling(both).stdout.strip() == "70"
    result = run_check({"NURTURE_CONFIRMATIONS_PER_HOUR": "40", "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_DEBUG": "1"})
    assert result.returncode == 0 and "NURTURE_CONFIRMATIONS_PER_HOUR: (nurture.W040)" in result.stderr
    assert "nurture.W040" not in run_check({"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_DEBUG": "1"}).stderr


@pytest.mark.django_db
def test_a_database_migrated_before_the_squash_stops_migrate_with_the_one_time_step():
    """Recorded migrations of the older chain and no squashed first one: E050 names the app and the
    --fake step, instead of `migrate` trying to create tables that exist."""
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    from config.checks import migrated_before_the_squash

    assert migrated_before_the_squash(databases=["default"]) == []  # a database migrated by this release
    recorder = MigrationRecorder(connection)
    recorder.record_unapplied("nurture", "0001_schema")
    recorder.record_unapplied("nurture", "0002_delivery_unanswered")
    recorder.record_applied("nurture", "0021_feedback_and_review_of_an_older_chain")
    [error] = migrated_before_the_squash(databases=["default"])
    assert error.id == "nurture.E050" and "nurture" in error.msg
    assert "migrate nurture 0001_schema --fake --skip-checks" in error.hint
    recorder.record_applied("nurture", "0001_schema")  # the one-time step
    assert migrated_before_the_squash(databases=["default"]) == []
