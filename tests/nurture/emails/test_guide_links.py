"""Series emails: a reference to another article is a real link to its guide page, and the library keeps it to an
article the reader's own series sends; every email credits the guide in the reader's language."""
from __future__ import annotations

import re

import pytest

from content.guide import guide_article_url
from content.models import Language, Stage
from nurture.emails.cache import render_cache
from nurture.emails.messages import build_step_email
from nurture.models import Series, Subscriber
from nurture.selectors.series import step_published_articles

pytestmark = pytest.mark.django_db
GUIDE_LINK = re.compile(r'href="(https?://[^"]+/guide/(en|es)/([a-z0-9-]+)/)"')


@pytest.fixture
def library(default_library_for_module):  # loaded once for the module (tests/conftest.py)
    render_cache.clear()
    yield
    render_cache.clear()


def html_part(message) -> str:
    return next(content for content, mime in message.alternatives if mime == "text/html")


@pytest.mark.parametrize("stage", Stage.values)
@pytest.mark.parametrize("language", Language.values)
def test_every_link_between_articles_stays_in_the_reader_series(library, stage, language):
    series = Series.objects.get(stage=stage, language=language)
    in_series = {a.slug for step in series.steps.all() for a in step_published_articles(step_id=step.pk)}
    reader = Subscriber.objects.create(email=f"{stage}-{language}@example.org", stage=stage, language=language)
    linked = set()
    for step in series.steps.order_by("position"):
        html = html_part(build_step_email(step=step, subscriber=reader))
        for url, link_language, slug in GUIDE_LINK.findall(html):
            assert link_language == language and slug in in_series, (step.subject, slug)
            assert url == guide_article_url(language=language, slug=slug)
            linked.add(slug)
    assert linked, "the series' emails carry links between articles"


@pytest.mark.parametrize("language, credit, section", [
    ("en", "Based on the guide “Seeking a Second Opinion” by the American Cancer Society, last revised 31 July 2025.",
     "Section: Seeking a Second Opinion."),
    ("es", "Basado en la guía en inglés «Seeking a Second Opinion» (Cómo buscar una segunda opinión), de la American Cancer Society",
     "Sección: Cómo buscar una segunda opinión."),
])
def test_every_email_credits_the_guide_in_the_reader_language(library, language, credit, section):
    step = Series.objects.get(stage=Stage.IN_REMISSION, language=language).steps.get(position=0)
    reader = Subscriber.objects.create(email=f"c-{language}@example.org", stage=Stage.IN_REMISSION, language=language)
    message = build_step_email(step=step, subscriber=reader)
    for part in (message.body, html_part(message)):
        assert credit in part.replace("&amp;", "&")
        assert section in part
    if language == "es":
        assert "secciones: Seeking" not in message.body and "The second opinion process" not in message.body
