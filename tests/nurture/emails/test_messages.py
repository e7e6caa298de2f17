"""Every default step's email, in both languages, parsed back as a mail client would."""
from __future__ import annotations

import email
import html as html_lib
import re
from email import policy
from urllib.parse import urlsplit

import pytest
from django.utils import translation

from content.models import Stage
from nurture.emails.cache import render_cache
from nurture.emails.messages import build_confirmation_email, build_delivery_email
from nurture.models import Delivery, Step, Subscriber
from nurture.selectors.series import step_published_articles
from nurture.validators import diagnosis_words_in
from tests.helpers.email_html import css_outside_at_rules, read_html

pytestmark = pytest.mark.django_db

STAGE_WORDS = set()
for language in ("en", "es"):
    with translation.override(language):
        STAGE_WORDS.update(str(label) for label in Stage.labels)
STAGE_WORDS.update(Stage.values)


@pytest.fixture
def library(default_library_for_module):  # loaded once for the module (tests/conftest.py)
    render_cache.clear()


def _delivery(step: Step, n: int, first_name: str = "Sam") -> Delivery:
    subscriber = Subscriber.objects.create(
        email=f"reader{n}@example.org", first_name=first_name, stage=step.series.stage,
        language=step.series.language, status=Subscriber.Status.ACTIVE, series=step.series,
    )
    return Delivery.objects.create(subscriber=subscriber, step=step, message_id=f"<d{n}@nurture.invalid>")


def _parsed(message):
    return email.message_from_bytes(message.message().as_bytes(), policy=policy.default)


def test_every_default_step_in_both_languages_is_a_complete_accessible_email(library, settings):
    settings.NURTURE_UNSUBSCRIBE_MAILTO = "leave@example.org"
    steps = list(Step.objects.select_related("series").order_by("series__language", "series__stage", "position"))
    assert {s.series.language for s in steps} == {"en", "es"} and len(steps) >= 40
    for n, step in enumerate(steps):
        delivery = _delivery(step, n)
        message = build_delivery_email(delivery)
        parsed = _parsed(message)
        where = f"{step.series.language}/{step.series.stage}/#{step.position}"

        assert parsed.get_content_type() == "multipart/alternative", where
        kinds = [part.get_content_type() for part in parsed.iter_parts()]
        assert kinds == ["text/plain", "text/html"], where
        text = parsed.get_body(preferencelist=("plain",)).get_content()
        html = parsed.get_body(preferencelist=("html",)).get_content()

        # Headers: one-click unsubscribe (RFC 8058), list id, our message id; nothing about the stage.
        unsubscribe = parsed["List-Unsubscribe"]
        https_url = unsubscribe.split(",")[0].strip().strip("<>")
        assert https_url.startswith("https://guide.example.org/unsubscribe/"), where
        assert "<mailto:leave@example.org>" in unsubscribe
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert parsed["List-Id"] == f"<{settings.NURTURE_LIST_ID}>"
        assert parsed["Message-ID"] == delivery.message_id
        assert parsed["Subject"] == step.subject
        header_text = "\n".join(f"{k}: {v}" for k, v in parsed.items()).casefold()
        for word in STAGE_WORDS:
            assert word.casefold() not in header_text, (where, word)
        assert diagnosis_words_in(parsed["Subject"]) == [], where
        # Nothing for the provider to file the stage under: no tags, and metadata is the delivery
        # id alone (its webhook events carry it back to settle an unknown outcome).
        assert not getattr(message, "tags", None)
        assert getattr(message, "metadata", None) in (None, {"delivery": str(delivery.pk)}), where

        # The HTML: language, one h1, an h2 per article (but for one whose title is the email's own
        # heading: it is not said twice), CSS on the elements, alt on any image.
        doc = read_html(html)
        assert doc.all("html")[0].attrs.get("lang") == step.series.language, where
        assert len(doc.all("h1")) == 1 and doc.all("h1")[0].attrs.get("style"), where
        articles = step_published_articles(step_id=step.pk)
        assert len(articles) >= 1, where
        h2s = [html_lib.unescape(t).strip() for t in re.findall(r"<h2\b[^>]*>(.*?)</h2>", html, re.S)]
        article_headings = [t for t in h2s if t in {a.title for a in articles}]
        alone = len(articles) == 1
        assert article_headings == [a.title for a in articles if not (alone and a.title == step.subject)], where
        assert step.subject not in h2s, where  # the subject is said once, as the h1
        for element in doc.elements:
            if element.in_body and element.tag in {"p", "h1", "h2", "h3", "a", "td", "table", "li", "ul", "body"}:
                assert element.attrs.get("style"), (where, element)
        assert all(img.attrs.get("alt") is not None for img in doc.all("img")), where
        assert len(doc.styles) == 1 and css_outside_at_rules(doc.styles[0]) == "", where
        assert "prefers-color-scheme: dark" in doc.styles[0]
        assert any(m.attrs.get("name") == "color-scheme" for m in doc.all("meta"))

        # What every nurture email carries, in both parts.
        for article in articles:
            assert article.title in doc.text and article.title in text, where
        for part in (doc.text, text):
            assert settings.NURTURE_ORG_NAME in part and settings.NURTURE_ORG_ADDRESS in part
            assert settings.NURTURE_ORG_HELPLINE in part
            assert "Seeking a Second Opinion" in part  # the source attribution
            assert "Sam" in part
        hrefs = [a.attrs.get("href", "") for a in doc.all("a")]
        assert https_url in hrefs and https_url in text
        assert any("/preferences/" in h for h in hrefs) and "/preferences/" in text
        assert any("/email/" in h for h in hrefs) and "/email/" in text
        assert settings.NURTURE_ORG_WEBSITE in hrefs
        for word in Stage.values:
            assert word not in html and word not in text, (where, word)


def test_list_unsubscribe_one_click_post_unsubscribes(library, client):
    step = Step.objects.filter(series__language="es").first()
    delivery = _delivery(step, 1)
    parsed = _parsed(build_delivery_email(delivery))
    url = parsed["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    # What a mail client does for RFC 8058: a POST with this body and no cookies or CSRF token.
    response = client.post(urlsplit(url).path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Subscriber.objects.get(pk=delivery.subscriber_id).status == Subscriber.Status.UNSUBSCRIBED


def test_no_mailto_target_unless_configured(library, settings):
    settings.NURTURE_UNSUBSCRIBE_MAILTO = ""
    delivery = _delivery(Step.objects.first(), 1)
    value = str(_parsed(build_delivery_email(delivery))["List-Unsubscribe"]).strip()
    assert "mailto:" not in value and value.startswith("<https://") and value.endswith(">")


def test_first_name_is_escaped_in_html_and_plain_in_text(library):
    delivery = _delivery(Step.objects.filter(series__language="en").first(), 1, first_name='<script>alert("x")</script> & Zoë')
    message = build_delivery_email(delivery)
    html = message.alternatives[0][0]
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; Zoë" in html
    assert 'Hello <script>alert("x")</script> & Zoë,' in message.body


def test_no_first_name_gives_a_plain_greeting(library):
    delivery = _delivery(Step.objects.filter(series__language="es").first(), 1, first_name="")
    message = build_delivery_email(delivery)
    assert "Hola:" in message.body and "Hola:" in message.alternatives[0][0]


def test_unpublished_article_is_left_out(library):
    step = Step.objects.filter(series__language="en", series__stage="recently_diagnosed", position=2).get()
    first, second = step_published_articles(step_id=step.pk)[:2]
    second.status = second.Status.DRAFT
    second.save()
    message = build_delivery_email(_delivery(step, 1))
    assert first.title in message.body and second.title not in message.body


@pytest.mark.parametrize("language", ["en", "es"])
def test_confirmation_email_is_short_stage_free_and_styled(language, settings):
    subscriber = Subscriber.objects.create(email="c@example.org", first_name="Lu", stage="in_remission", language=language)
    parsed = _parsed(build_confirmation_email(subscriber))
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    doc = read_html(html)
    assert doc.all("html")[0].attrs["lang"] == language and len(doc.all("h1")) == 1
    assert "/confirm/" in text and any("/confirm/" in a.attrs.get("href", "") for a in doc.all("a"))
    everything = (text + html + str(parsed["Subject"])).casefold()
    for word in STAGE_WORDS:
        assert word.casefold() not in everything, word
    assert settings.NURTURE_ORG_NAME in text and "List-Unsubscribe" not in parsed
    assert len(text.split()) < 120  # short: it only asks them to confirm


def test_only_the_email_that_asks_the_impact_question_makes_a_link_for_it(library, monkeypatch):
    """A link is a sealed token (CPU per email): the impact link is made only where the email
    asks the question (the series' last step, layout.asks_impact), and there it is in the body."""
    from nurture import tokens
    from nurture.emails.layout import asks_impact

    made = []
    real = tokens.make_token
    monkeypatch.setattr(tokens, "make_token", lambda **kw: made.append(kw["extra"]) or real(**kw))
    steps = list(Step.objects.filter(series__language="en").select_related("series").order_by("series", "position"))
    last = next(step for step in steps if asks_impact(step))
    first = next(step for step in steps if not asks_impact(step))
    for n, step in enumerate((first, last)):
        made.clear()
        delivery = _delivery(step, 900 + n)
        message = build_delivery_email(Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery.pk))
        asked = f"{delivery.pk}:impact" in made
        assert asked == (step is last)
        assert (f"{delivery.pk}:helpful" in made) and len(made) == (6 if asked else 5)
        assert ("One last question" in message.body) == asked
