"""The public guide pages (/guide/<lang>/<slug>/): one per published article, nothing personal, cacheable,
credited in the reader's language, with references linked to other guide pages."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from content.guide import guide_article_url
from content.models import Article
from support.library import load_default_library

pytestmark = pytest.mark.django_db


@pytest.fixture
def library():
    load_default_library()


@pytest.fixture
def client():
    return Client()


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_published_article_has_a_page_in_the_site_layout(library, client, language):
    for article in Article.objects.filter(language=language, status=Article.Status.PUBLISHED):
        response = client.get(f"/guide/{language}/{article.slug}/")
        assert response.status_code == 200, article.slug
        html = response.content.decode()
        assert f"<h1>{article.title}</h1>" in html
        assert '<html lang="' + language + '"' in html
        assert response["Content-Language"] == language


def test_the_page_is_the_same_for_everyone_and_cacheable(library, client):
    response = client.get("/guide/en/welcome/")
    assert "public" in response["Cache-Control"] and "max-age=" in response["Cache-Control"]
    assert not response.cookies, "a guide page sets no cookie"
    assert "token" not in response.content.decode().lower()
    again = Client(HTTP_COOKIE="sessionid=someone").get("/guide/en/welcome/")
    assert again.content == response.content


def test_references_are_real_links_to_guide_pages(library, client):
    html = client.get("/guide/en/talking-to-your-doctor/").content.decode()
    target = guide_article_url(language="en", slug="remembering-what-your-doctor-says")
    assert f'<a href="{target}" rel="noopener">' in html
    assert client.get(target.split("://", 1)[1].split("/", 1)[1].join(["/", ""])).status_code == 200


@pytest.mark.parametrize("language, expected", [
    ("en", ["Based on the guide “Seeking a Second Opinion” by the American Cancer Society, last revised 31 July 2025.",
            "Section: How to talk to your doctor about getting a second opinion.", "copyrighted"]),
    ("es", ["Basado en la guía en inglés «Seeking a Second Opinion» (Cómo buscar una segunda opinión)",
            "revisada por última vez el 31 de julio de 2025", "Sección: Cómo hablar con su médico sobre una segunda opinión.",
            "derechos de autor"]),
])
def test_the_page_credits_the_guide_in_the_reader_language(library, client, language, expected):
    html = client.get(f"/guide/{language}/talking-to-your-doctor/").content.decode()
    for text in expected:
        assert text in html, text


def test_a_text_nobody_qualified_reviewed_says_so(library, client):
    assert "Not yet reviewed" in client.get("/guide/en/welcome/").content.decode()
    assert "Pendiente de revisión" in client.get("/guide/es/welcome/").content.decode()
    Article.objects.filter(slug="welcome", language="en").update(reviewer="A. Named Reviewer, RN")
    assert "Not yet reviewed" not in client.get("/guide/en/welcome/").content.decode()


@pytest.mark.parametrize("path", ["/guide/en/no-such-article/", "/guide/fr/welcome/", "/guide/fr/", "/guide/es/<script>/"])
def test_an_unknown_page_is_a_plain_404_with_a_way_on(library, client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert 'href="/guide/' in response.content.decode()


def test_an_unpublished_article_has_no_page(library, client):
    Article.objects.filter(slug="welcome", language="en").update(status=Article.Status.DRAFT)
    assert client.get("/guide/en/welcome/").status_code == 404
    assert "/guide/en/welcome/" not in client.get("/guide/en/").content.decode()


def test_the_index_lists_the_published_articles(library, client):
    html = client.get("/guide/es/").content.decode()
    assert len(re.findall(r'href="/guide/es/[a-z-]+/"', html)) == Article.objects.filter(language="es", status="published").count()


def test_only_reading_is_allowed(library, client):
    assert client.post("/guide/en/welcome/").status_code == 405


def test_the_guide_shows_only_what_the_emails_may_send(client, settings):
    """The web guide follows the emails' rule: text no reviewer approved is not shown outside the demo."""
    settings.DEBUG = False
    load_default_library(approved=False)
    assert client.get("/guide/en/welcome/").status_code == 404
    assert "/guide/en/welcome/" not in client.get("/guide/en/").content.decode()
    from content.services import articles_approve
    from support.library import sample_reviewer
    articles_approve(user=sample_reviewer(), role="oncology nurse")
    assert client.get("/guide/en/welcome/").status_code == 200
    assert "/guide/en/welcome/" in client.get("/guide/en/").content.decode()
