"""Content Security Policy and Permissions-Policy on every page, public and admin; pages that show
an email's HTML keep their own stricter policy; no template carries an inline script or style."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from nurture.models import Delivery
from tests.helpers.scheduler import active_subscriber, article, series
from tests.helpers.staff import staff_user, verified_login

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]


def _directives(header: str) -> dict[str, set[str]]:
    parts = [p.strip().split() for p in header.split(";") if p.strip()]
    return {p[0]: set(p[1:]) for p in parts}


def _assert_site_policy(response):
    policy = _directives(response["Content-Security-Policy"])
    assert policy["default-src"] == {"'self'"}
    assert policy["script-src"] == {"'self'"} and policy["style-src"] == {"'self'"}  # no inline, no other origin
    assert policy["object-src"] == {"'none'"} and policy["base-uri"] == {"'none'"}
    assert policy["frame-ancestors"] == {"'self'"}
    assert not any("unsafe" in value or "://" in value for values in policy.values() for value in values)
    permissions = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions


@pytest.fixture
def world(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    treatment = series("in_treatment", [(0, ["welcome"])])
    person = active_subscriber("reader@example.org", treatment)
    delivery = Delivery.objects.create(subscriber=person, step=treatment.steps.get(), status="sent",
                                       article_versions={str(article("welcome").pk): 1})
    return {"step": treatment.steps.get(), "delivery": delivery}


def test_public_pages_carry_the_policy(client, world):
    for url in ("/", "/thanks/", "/confirm/not-a-token/", "/preferences/not-a-token/", "/unsubscribe/bad/"):
        response = client.get(url)
        assert response.status_code in (200, 400), url
        _assert_site_policy(response)
    assert client.post("/", {"email": "x"}).status_code == 400
    _assert_site_policy(client.post("/", {"email": "x"}))


def test_admin_pages_carry_the_policy(client, world):
    _assert_site_policy(client.get(reverse("admin:login")))
    verified_login(client, staff_user("lead", superuser=True))
    for url in (
        reverse("admin:index"), reverse("admin:nurture_subscriber_changelist"), reverse("nurture_overview"),
        reverse("email_preview:index"), reverse("email_preview:step", args=[world["step"].pk]),
        reverse("admin:nurture_auditentry_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_site_policy(response)


def test_email_html_pages_keep_their_stricter_policy(client, world):
    from nurture.emails.links import view_online_url

    verified_login(client, staff_user("lead", superuser=True))
    delivery = world["delivery"]
    online = view_online_url(subscriber_id=delivery.subscriber_id, delivery_id=delivery.pk).removeprefix("https://guide.example.org")
    for url in (
        reverse("email_preview:step_html", args=[world["step"].pk]),
        reverse("email_preview:delivery_html", args=[delivery.pk]),
        reverse("admin:content_article_preview", args=[article("welcome").pk]),
        online,
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = _directives(response["Content-Security-Policy"])
        assert policy["default-src"] == {"'none'"}, url
        assert "script-src" not in policy  # so no script at all
        assert policy["style-src"] == {"'unsafe-inline'"}  # the email's own inline styles
        assert "Permissions-Policy" in response


def test_no_template_or_admin_code_has_inline_scripts_or_style_attributes():
    """The policy would block them: scripts and styles live in static files."""
    offenders = []
    for path in list((ROOT / "templates").rglob("*.html")) + list((ROOT / "content").rglob("*.py")) + list((ROOT / "nurture").rglob("*.py")):
        if "templates/email" in str(path) or "/migrations/" in str(path):
            continue  # emails are not web pages: their styles are inlined on purpose
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"<style\b", text) or re.search(r"\sstyle=[\"']", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
