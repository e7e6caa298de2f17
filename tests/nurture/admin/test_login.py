"""Signing in to the admin: two-factor (TOTP) whenever DEBUG is off, lockout after repeated
failures (django-axes), the admin path setting, idle expiry of staff sessions, enrolment."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import CommandError, call_command
from django.urls import clear_url_caches, reverse
from django.utils import timezone
from django.utils.html import escape
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.helpers.staff import PASSWORD, current_code, staff_user, totp_device

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _login(client, username, password=PASSWORD, **extra):
    return client.post(reverse("admin:login"), {"username": username, "password": password, **extra},
                       REMOTE_ADDR="203.0.113.9")


def _in_admin(client) -> bool:
    return client.get(reverse("admin:index")).status_code == 200


# --- two-factor ----------------------------------------------------------------------------------


def test_with_debug_off_a_password_alone_is_refused(client, settings):
    settings.DEBUG = False
    staff_user("lead", superuser=True)
    response = _login(client, "lead")
    assert response.status_code == 200 and 'name="otp_token"' in response.content.decode()
    assert not _in_admin(client)


def test_with_debug_off_a_wrong_code_is_refused_and_a_valid_code_lets_in(client, settings, time_machine):
    settings.DEBUG = False
    device = totp_device(staff_user("lead", superuser=True))
    code = current_code(device)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert _login(client, "lead", otp_device=device.persistent_id, otp_token=wrong).status_code == 200
    assert not _in_admin(client)
    # django-otp throttles a device after a wrong code: even the right one waits a moment.
    assert _login(client, "lead", otp_device=device.persistent_id, otp_token=code).status_code == 200
    assert not _in_admin(client)
    time_machine.move_to(timezone.now() + timedelta(seconds=5))
    device.refresh_from_db()
    response = _login(client, "lead", otp_device=device.persistent_id, otp_token=current_code(device))
    assert response.status_code == 302
    assert _in_admin(client)


def test_with_debug_off_the_login_page_as_shown_lets_in_with_password_and_code(client, settings):
    # The page shows username, password and code only (no device choice until the password was
    # right): one post of those three signs in someone with one device, as README says.
    settings.DEBUG = False
    device = totp_device(staff_user("lead", superuser=True))
    page = client.get(reverse("admin:login")).content.decode()
    assert 'name="otp_token"' in page and 'name="otp_device"' not in page
    response = _login(client, "lead", otp_token=current_code(device))
    assert response.status_code == 302, re.findall(r'errornote[^>]*>([^<]*)', response.content.decode())
    assert _in_admin(client)


def _answer(response) -> str:
    """The sign-in page as a guesser sees it, the CSRF token and the typed username aside."""
    page = response.content.decode()
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)
    return page


@pytest.mark.parametrize("code", ["", "000000"])
def test_a_right_password_with_a_wrong_or_missing_code_looks_like_a_wrong_password(client, settings, code):
    """Someone guessing passwords must not learn when one was right: the same message, no device
    list, no password kept in its field, whatever of the three was wrong."""
    settings.DEBUG = False
    totp_device(staff_user("lead", superuser=True))
    wrong_password = _login(client, "lead", password="not-the-password", otp_token=code)
    right_password = _login(client, "lead", otp_token=code)
    assert wrong_password.status_code == right_password.status_code == 200
    assert _answer(wrong_password) == _answer(right_password)
    page = _answer(right_password)
    assert "Please enter a correct username, password and current code" in page
    assert 'name="otp_device"' not in page and PASSWORD not in page
    assert not _in_admin(client)


def test_a_right_password_with_a_wrong_code_counts_towards_the_lockout(client, settings):
    settings.DEBUG = False
    totp_device(staff_user("lead", superuser=True))
    for _ in range(2):
        _login(client, "lead", otp_token="000000")
    assert AccessAttempt.objects.get(username="lead").failures_since_start == 2


def test_a_session_without_a_verified_device_is_not_staff(client, settings):
    settings.DEBUG = False
    client.force_login(staff_user("lead", superuser=True))  # password only, no device verified
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    assert client.get(reverse("email_preview:index")).status_code == 302
    assert client.get(reverse("nurture_overview")).status_code == 302


def test_with_debug_on_the_demo_login_needs_no_second_factor(client, settings):
    settings.DEBUG = True
    staff_user("demo-staff", superuser=True)
    response = _login(client, "demo-staff")
    assert response.status_code == 302
    assert _in_admin(client)


def test_otp_enrol_prints_the_provisioning_uri_and_a_qr_code(capsys):
    staff_user("nurse", "Subscriber care")
    call_command("otp_enrol", "nurse")
    out = capsys.readouterr().out
    device = TOTPDevice.objects.get(user__username="nurse")
    assert device.confirmed and device.config_url in out
    assert re.search(r"otpauth://totp/nurture%3Anurse\?secret=[A-Z2-7]+", out)
    assert "█" in out  # the QR code, drawn in the terminal
    with pytest.raises(CommandError, match="already has 1 TOTP device"):
        call_command("otp_enrol", "nurse")
    call_command("otp_enrol", "nurse", "--replace", "--no-qr")
    assert TOTPDevice.objects.filter(user__username="nurse").count() == 1
    assert TOTPDevice.objects.get(user__username="nurse").pk != device.pk
    with pytest.raises(CommandError, match="no user"):
        call_command("otp_enrol", "nobody")
    staff_user("visitor").__class__.objects.filter(username="visitor").update(is_staff=False)
    with pytest.raises(CommandError, match="not an active staff user"):
        call_command("otp_enrol", "visitor")


def test_the_admin_shows_the_devices_qr_code(client, settings):
    from tests.helpers.staff import verified_login

    lead = staff_user("lead", superuser=True)
    verified_login(client, lead)
    device = totp_device(lead)
    page = client.get(reverse("admin:otp_totp_totpdevice_config", args=[device.pk]))
    assert page.status_code == 200 and escape(device.config_url) in page.content.decode()
    image = client.get(reverse("admin:otp_totp_totpdevice_qrcode", args=[device.pk]))
    assert image.status_code == 200 and image["Content-Type"] == "image/svg+xml" and b"<svg" in image.content


# --- lockout -------------------------------------------------------------------------------------


def test_five_failures_lock_the_username_and_address_out_even_with_the_right_password(client, settings):
    settings.DEBUG = True  # the password alone is enough: the lockout is what is tested
    staff_user("lead", superuser=True)
    for _ in range(4):
        assert _login(client, "lead", "wrong-password").status_code == 200
    assert _login(client, "lead", "wrong-password").status_code == 429  # the fifth failure locks
    locked = _login(client, "lead")
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-ins" in text and "30 minutes" in text
    assert 1 <= int(locked["Retry-After"]) <= 30 * 60
    assert not _in_admin(client)
    # Another address is not locked out by these failures (per username *and* address).
    other = client.post(reverse("admin:login"), {"username": "lead", "password": PASSWORD}, REMOTE_ADDR="198.51.100.7")
    assert other.status_code == 302


def test_the_limit_and_cool_off_are_settings(client, settings):
    settings.DEBUG = True
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=5)
    staff_user("lead", superuser=True)
    assert _login(client, "lead", "wrong").status_code == 200
    assert _login(client, "lead", "wrong").status_code == 429
    locked = _login(client, "lead")
    assert locked.status_code == 429 and "5 minutes" in locked.content.decode()


def test_the_lockout_ends_after_the_cool_off(client, settings, time_machine):
    settings.DEBUG = True
    staff_user("lead", superuser=True)
    for _ in range(5):
        _login(client, "lead", "wrong")
    assert _login(client, "lead").status_code == 429
    time_machine.move_to(timezone.now() + timedelta(minutes=29))
    assert _login(client, "lead").status_code == 429
    time_machine.move_to(timezone.now() + timedelta(minutes=2))
    assert _login(client, "lead").status_code == 302


def test_staff_see_and_clear_lockouts_in_admin(client, settings):
    from tests.helpers.staff import verified_login

    settings.DEBUG = True
    staff_user("lead", superuser=True)
    for _ in range(5):
        _login(client, "lead", "wrong")
    attempt = AccessAttempt.objects.get(username="lead")
    assert attempt.failures_since_start == 5 and attempt.ip_address == "203.0.113.9"
    admin = staff_user("admin2", superuser=True)
    staff = client.__class__()
    verified_login(staff, admin)
    listing = staff.get(reverse("admin:axes_accessattempt_changelist")).content.decode()
    assert "203.0.113.9" in listing
    staff.post(reverse("admin:axes_accessattempt_changelist"),
               {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"})
    assert not AccessAttempt.objects.exists()
    assert _login(client, "lead").status_code == 302


# --- admin path and sessions ---------------------------------------------------------------------


def test_the_admin_path_is_a_setting(client, settings):
    import importlib

    import config.urls

    settings.DJANGO_ADMIN_PATH = "staff-7f3a/"
    try:
        importlib.reload(config.urls)
        settings.ROOT_URLCONF = "config.urls"
        clear_url_caches()
        assert reverse("admin:index") == "/staff-7f3a/"
        assert reverse("nurture_overview").startswith("/staff-7f3a/")
        assert client.get("/staff-7f3a/login/").status_code == 200
        assert client.get("/admin/login/").status_code == 404
    finally:
        settings.DJANGO_ADMIN_PATH = "admin/"
        importlib.reload(config.urls)
        clear_url_caches()


@pytest.mark.parametrize("value", ["/admin/", "admin", "ad min/", "../x/", "", "admin//"])
def test_a_bad_admin_path_is_a_system_check_error(monkeypatch, value):
    from config import env

    monkeypatch.setattr(env, "CONFIG_ERRORS", [])
    monkeypatch.setenv("DJANGO_ADMIN_PATH", value)
    result = env.env_url_path("DJANGO_ADMIN_PATH", "admin/")
    if value == "":
        assert result == "admin/" and not env.CONFIG_ERRORS
    else:
        assert result == "admin/" and env.CONFIG_ERRORS and env.CONFIG_ERRORS[0][0] == "DJANGO_ADMIN_PATH"


def test_staff_sessions_expire_after_the_idle_setting(client, settings, time_machine):
    from tests.helpers.staff import verified_login

    assert settings.SESSION_COOKIE_AGE == settings.NURTURE_STAFF_SESSION_IDLE_MINUTES * 60 == 8 * 60 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST  # each request renews it: idle time, not total
    verified_login(client, staff_user("lead", superuser=True))
    time_machine.move_to(timezone.now() + timedelta(hours=7))
    assert _in_admin(client)  # renewed
    time_machine.move_to(timezone.now() + timedelta(hours=7))
    assert _in_admin(client)
    time_machine.move_to(timezone.now() + timedelta(hours=8, minutes=1))
    assert not _in_admin(client)
