"""The first email a reader gets: one heading, one article, short, and dates as their language writes them."""
from __future__ import annotations

import re

import pytest

from content import sources
from nurture.selectors.series import step_published_articles
from nurture.emails.cache import render_cache
from nurture.emails.layout import render_step_full
from nurture.emails.links import personal_for
from nurture.models import Step, Subscriber
from support.library import load_default_library

pytestmark = pytest.mark.django_db

HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1>", re.S)


@pytest.fixture
def first_emails():
    """(stage, language, html, text) for the first step of every series in the library."""
    load_default_library()
    render_cache.clear()
    rendered = []
    for step in Step.objects.filter(position=0).select_related("series").order_by("series__stage", "series__language"):
        language = step.series.language
        reader = Subscriber.objects.create(email=f"first.{step.pk}@example.org", first_name="Ana",
                                           stage=step.series.stage, language=language)
        articles = step_published_articles(step_id=step.pk)
        personal = personal_for(reader, language=language, delivery_id=None)
        html, text = render_step_full(step=step, articles=articles, language=language, personal=personal)
        rendered.append((step.series.stage, language, step, articles, html, text))
    render_cache.clear()
    assert len(rendered) == 6  # three stages, two languages
    return rendered


def test_the_first_email_says_its_title_once_and_carries_one_article(first_emails):
    for stage, language, step, articles, html, text in first_emails:
        headings = HEADING.findall(html)
        assert [text for level, text in headings if level == "1"] == [step.subject], (stage, language)
        assert [t for _level, t in headings].count(step.subject) == 1, (stage, language, headings)
        assert len(articles) == 1, (stage, language, [a.slug for a in articles])
        assert text.count(step.subject) == 1, (stage, language)


def test_the_first_email_headings_go_down_one_level_at_a_time(first_emails):
    for stage, language, _step, _articles, html, _text in first_emails:
        levels = [int(level) for level, _text in HEADING.findall(html)]
        assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:])), (stage, language, levels)


def test_the_first_email_is_short(first_emails):
    """About 330 words with the footer, not the 600 of two articles."""
    for stage, language, _step, _articles, _html, text in first_emails:
        assert len(text.split()) < 420, (stage, language, len(text.split()))


@pytest.mark.parametrize(("language", "written"), [("en", "31 July 2025"), ("es", "31 de julio de 2025")])
def test_the_guide_revision_date_is_written_as_the_reader_language_writes_dates(first_emails, language, written):
    assert sources.guide_credit(language=language).revised == written
    for _stage, email_language, _step, _articles, html, text in first_emails:
        if email_language == language:
            assert written in html and written in text
            assert not re.search(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4}", text)
