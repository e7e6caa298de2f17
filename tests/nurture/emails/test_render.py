"""The render cache: one heavy render per step and language, then byte-identical personal copies."""
from __future__ import annotations

import pytest

import json

from nurture.emails.cache import RenderCache, render_cache, render_step, render_step_with_json
from nurture.emails.layout import _email_body_html, render_step_full
from nurture.emails.links import personal_for
from nurture.emails.messages import build_step_email
from nurture.emails.text import html_to_text
from nurture.models import Delivery, Step, Subscriber
from nurture.selectors.series import step_published_articles

pytestmark = pytest.mark.django_db

NAMES = [
    "Ana",
    "",
    "O'Brien",
    'Jo "JJ" Smith',
    "<b>bold</b> & co",
    "Zoë Ångström-Núñez",
    "李小龙",
    "a&amp;b &lt;c&gt;",
    "  spaced\tout\nname  ",
    "non\u00a0breaking",
    "NURTUREPH0greeting0",  # names that look like our placeholders must stay names
    "NURTUREPH0unsubscribe0",
    "back\\slash \U0001f337 \x07",  # JSON escapes a backslash and a character beyond 16 bits (the bell is dropped)
]


@pytest.fixture
def library(default_library_for_module):  # loaded once for the module (tests/conftest.py)
    render_cache.clear()
    yield
    render_cache.clear()


def _subscriber(n: int, first_name: str, language: str) -> Subscriber:
    return Subscriber.objects.create(email=f"s{n}@example.org", first_name=first_name, stage="in_treatment", language=language)


@pytest.mark.parametrize("language", ["en", "es"])
def test_cached_and_personalised_copy_and_its_json_are_byte_identical_to_a_full_render(library, language):
    steps = list(Step.objects.filter(series__language=language).select_related("series")[:6])
    for n, name in enumerate(NAMES):
        subscriber = _subscriber(n, name, language)
        for step in steps:
            articles = step_published_articles(step_id=step.pk)
            delivery = Delivery.objects.create(subscriber=subscriber, step=step)
            for delivery_id in (delivery.pk, None):  # with and without the "view in browser" link
                personal = personal_for(subscriber, language=language, delivery_id=delivery_id)
                cached = render_step(step=step, articles=articles, language=language, personal=personal)
                full = render_step_full(step=step, articles=articles, language=language, personal=personal)
                assert cached[0].encode() == full[0].encode(), (name, step.pk, delivery_id)
                assert cached[1].encode() == full[1].encode(), (name, step.pk, delivery_id)
                assert cached[1].count("NURTUREPH0") == name.count("NURTUREPH0")
                # What a provider call posts for the bodies (nurture/emails/encoded.py) is joined from
                # the render's parts escaped once: byte for byte json.dumps of the copy, as anymail writes it.
                copy = render_step_with_json(step=step, articles=articles, language=language, personal=personal)
                assert (copy.html, copy.text) == cached
                assert copy.html_json == json.dumps(copy.html), (name, step.pk, delivery_id)
                assert copy.text_json == json.dumps(copy.text), (name, step.pk, delivery_id)
    assert " back\\\\slash \\ud83c\\udf37" in copy.text_json  # the last name, escaped
    # The heavy render ran once per step; every other copy came from the cache.
    assert render_cache.misses == len(steps)
    assert render_cache.hits >= len(steps) * (len(NAMES) * 2 - 1)


def test_a_new_article_version_is_rendered_afresh(library):
    step = Step.objects.filter(series__language="en").first()
    subscriber = _subscriber(1, "Ana", "en")
    before = build_step_email(step=step, subscriber=subscriber).body
    article = step_published_articles(step_id=step.pk)[0]
    article.body_markdown = "Completely new wording for this article."
    article.body_html = "<p>Completely new wording for this article.</p>"
    article.version += 1
    article.save()
    after = build_step_email(step=step, subscriber=subscriber).body
    assert "Completely new wording" in after and "Completely new wording" not in before
    assert render_cache.misses == 2


def test_organisation_settings_are_part_of_the_key(library, settings):
    step = Step.objects.filter(series__language="en").first()
    subscriber = _subscriber(1, "Ana", "en")
    build_step_email(step=step, subscriber=subscriber)
    settings.NURTURE_ORG_HELPLINE = "0800 123 456"
    assert "0800 123 456" in build_step_email(step=step, subscriber=subscriber).body


def test_cache_is_bounded():
    cache = RenderCache(maxsize=3)
    for key in range(5):
        cache.get_or_render((key,), lambda: ("h", "t"))
    assert len(cache) == 3
    calls = []
    cache.get_or_render((0,), lambda: calls.append(1) or ("h", "t"))  # evicted: rendered again
    cache.get_or_render((4,), lambda: calls.append(1) or ("h", "t"))  # recent: cached
    assert calls == [1]


def test_headings_inside_articles_come_under_the_article_heading():
    assert _email_body_html("<h2>A</h2><h1>B</h1><h3>C</h3>") == "<h3>A</h3><h3>B</h3><h4>C</h4>"


def test_links_without_a_target_become_text():
    assert _email_body_html('<p>See <a rel="noopener">why</a> and <a href="https://x.org">this</a>.</p>') == (
        '<p>See why and <a href="https://x.org">this</a>.</p>'
    )


def test_html_to_text_keeps_paragraphs_lists_and_links():
    html = (
        "<h2>Before you go</h2><p>Read <strong>this</strong> first,\nplease.</p>"
        '<ul><li>one</li><li>two <a href="https://example.org/a">guide</a></li></ul>'
        "<ol><li>first</li><li>second</li></ol>"
        '<p><a href="https://example.org">https://example.org</a> &amp; <a href="mailto:help@example.org">write</a></p>'
        "<blockquote><p>Quoted</p></blockquote>"
    )
    assert html_to_text(html) == (
        "Before you go\n-------------\n\n"
        "Read this first, please.\n\n"
        "- one\n- two guide (https://example.org/a)\n\n"
        "1. first\n2. second\n\n"
        "https://example.org & write (help@example.org)\n\n"
        "> Quoted"
    )


def test_a_cached_render_is_kept_apart_per_script_prefix(library):
    """The layout's own links (the privacy page) are reversed under the script prefix in force; a
    render made under one prefix is never reused under another (the key carries url_setting())."""
    from django.urls import get_script_prefix, set_script_prefix

    step = Step.objects.filter(series__language="en").first()
    subscriber = _subscriber(1, "Ana", "en")
    before = get_script_prefix()
    try:
        set_script_prefix("/charity/")
        under_prefix = build_step_email(step=step, subscriber=subscriber).body
        set_script_prefix("/")
        plain = build_step_email(step=step, subscriber=subscriber).body
    finally:
        set_script_prefix(before)
    assert "/charity/privacy" in under_prefix
    assert "/charity/" not in plain and "/privacy" in plain
    assert render_cache.misses == 2
