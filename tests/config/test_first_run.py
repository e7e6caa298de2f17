"""A smooth first run: no favicon 404 on any page, and the demo staff login shown again on request
(`make run` asks for it once the services have printed their start-up banners)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from nurture.management.commands.setup_demo import DEMO_USERNAME

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_favicon_ico_is_served_at_the_site_root(client):
    """Browsers ask for /favicon.ico on a page without an icon link (an email's web version)."""
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body[:4] == b"\x00\x00\x01\x00" and response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    page = client.get("/").content.decode()
    assert 'rel="icon"' in page and "nurture/favicon.svg" in page


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("setup_demo", *args, stdout=out)
    return out.getvalue()


def shown_password(output: str) -> str:
    return output.split("password: ", 1)[1].split("\n", 1)[0]


@pytest.mark.django_db(transaction=True)
def test_the_demo_login_is_shown_again_on_request(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.SITE_URL = "http://127.0.0.1:8010"
    with pytest.raises(CommandError, match="no demo login yet"):
        run("--show-login")
    first = run()
    password = shown_password(first)
    user = get_user_model().objects.get(username=DEMO_USERNAME)
    assert len(password) >= 16 and user.check_password(password)
    again = run("--show-login")
    assert shown_password(again) == password and "http://127.0.0.1:8010/admin/" in again
    assert "database migrated" not in again  # only the login
    assert (tmp_path / "demo-login.txt").stat().st_mode & 0o077 == 0  # the owner's alone
    assert shown_password(run()) == password  # a second `make run` keeps the same login
    # Changed by hand: not shown wrongly.
    user.set_password("another-long-password")
    user.save()
    assert password not in run("--show-login") and "the one you set" in run("--show-login")


def test_make_run_prints_the_login_after_the_services_start():
    lines = (ROOT / "Procfile.dev").read_text().splitlines()
    assert lines[-1].startswith("login: sleep ") and "manage.py setup_demo --show-login" in lines[-1]
    assert [line.split(":")[0] for line in lines[:-1]] == ["web", "worker", "beat"]
