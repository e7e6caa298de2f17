"""Reading level in the article admin: shown per article, a warning on save above the warning level,
and publishing blocked above the hard ceiling unless a reviewer gives the override reason."""
from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from content.models import Article
from nurture.services.library import library_import
from tests.content.test_readability import HARD_EN
from tests.nurture.admin.test_content import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def welcome(library_dir):
    library_import(library_dir=library_dir)
    return Article.objects.get(slug="welcome", language="en")


def test_the_level_is_shown_in_the_list_and_on_the_article(admin_client, welcome):
    listing = admin_client.get(reverse("admin:content_article_changelist")).content.decode()
    assert "Flesch-Kincaid grade" in listing and "Fernández-Huerta" in listing
    page = admin_client.get(reverse("admin:content_article_change", args=[welcome.pk])).content.decode()
    assert "Plain language" in page and "reading_level_override" in page
    assert "Flesch-Kincaid grade" in page


def test_saving_above_the_warning_level_warns_but_saves(admin_client, welcome, settings):
    settings.NURTURE_READING_GRADE_WARN_EN = 1
    url = reverse("admin:content_article_change", args=[welcome.pk])
    data = form_data(admin_client.get(url).content.decode())
    data["body_markdown"] = [welcome.body_markdown + "\nThank you for reading this with us today.\n"]
    response = admin_client.post(url, data)
    assert response.status_code == 302
    assert any("Reading level Flesch-Kincaid grade" in str(m) for m in get_messages(response.wsgi_request))
    welcome.refresh_from_db()
    assert welcome.version == 2


def test_publishing_past_the_ceiling_is_blocked_until_a_reviewer_gives_a_reason(admin_client, welcome):
    url = reverse("admin:content_article_change", args=[welcome.pk])
    data = form_data(admin_client.get(url).content.decode())
    data["body_markdown"] = [HARD_EN]
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, with the reason asked for
    assert "too hard to publish" in response.content.decode()
    welcome.refresh_from_db()
    assert welcome.version == 1 and "Notwithstanding" not in welcome.body_markdown

    data["status"] = ["draft"]  # a draft may be hard: only publishing is blocked
    assert admin_client.post(url, data).status_code == 302
    data = form_data(admin_client.get(url).content.decode())
    data["status"] = ["published"]
    data["reading_level_override"] = ["Reviewed by R. Lee: a glossary article, the terms are the point."]
    assert admin_client.post(url, data).status_code == 302
    welcome.refresh_from_db()
    assert welcome.is_published and welcome.reading_level_override.startswith("Reviewed by R. Lee")
