"""Errors a screen reader hears: every aria-describedby points at an element that exists, an error
summary at the top links to each field, the messages say what is wrong with that field (in the
reader's language), and the consent error sits with its checkbox."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from nurture import tokens
from nurture.models import Subscriber
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.described_by: dict[str, list[str]] = {}  # element (id or name) -> the ids it points at
        self.summary_links: list[str] = []
        self._in_summary = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if attrs.get("aria-describedby"):
            key = attrs.get("id") or attrs.get("name") or tag
            self.described_by[key] = attrs["aria-describedby"].split()
        if attrs.get("id") == "errors":
            self._in_summary = 1
        elif self._in_summary and tag == "div":
            self._in_summary += 1
        if self._in_summary and tag == "a":
            self.summary_links.append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if self._in_summary and tag == "div":
            self._in_summary -= 1


def parsed(html: str) -> _Ids:
    parser = _Ids()
    parser.feed(html)
    return parser


def assert_every_description_exists(found: _Ids) -> None:
    dangling = {element: [i for i in ids if i not in found.ids] for element, ids in found.described_by.items()}
    assert {k: v for k, v in dangling.items() if v} == {}


def test_a_failed_sign_up_names_each_problem_and_points_at_its_field(client):
    page = client.post("/", {"email": "not an email", "language": "en"})
    assert page.status_code == 400
    html = page.content.decode()
    found = parsed(html)
    assert_every_description_exists(found)
    assert found.described_by["id_email"] == ["id_email_error"]
    assert "id_consent" in found.described_by and "id_consent_error" in found.ids
    assert found.summary_links == ["#id_email", "#id_stage_0", "#id_consent"]
    assert 'id="errors" autofocus' in html  # the summary takes focus when the page opens
    assert "Enter an email address like name@example.org." in html
    assert "Choose the answer that best describes you now." in html
    assert "Tick the box to agree" in html
    assert "This field is required" not in html
    assert not Subscriber.objects.exists()


def test_the_help_text_is_announced_with_its_field(client):
    found = parsed(client.post("/", {"email": "a@example.org", "treatment_date": "soon"}).content.decode())
    assert_every_description_exists(found)
    assert found.described_by["id_treatment_date"] == ["id_treatment_date_helptext", "id_treatment_date_error"]


def test_an_empty_email_asks_for_one(client):
    html = client.post("/", {"email": ""}).content.decode()
    assert "Enter your email address, like name@example.org." in html


def test_the_consent_error_sits_with_its_checkbox(client):
    html = client.post("/", {"email": "a@example.org", "stage": "in_treatment", "language": "en"}).content.decode()
    group = re.search(r'<div class="field has-error">((?:(?!<div class="field).)*?id="id_consent")', html, re.S)
    assert group is not None and 'id="id_consent_error"' in group.group(1)
    language_select = html.index('id="id_language"')
    assert language_select < html.index('id="id_consent_error"')
    assert html[language_select:html.index('id="id_consent_error"')].count('<div class="field') == 1  # its own group


def test_errors_are_in_spanish_for_a_spanish_reader(client):
    client.cookies["django_language"] = "es"
    page = client.post("/", {"email": "no es un correo"})
    html = page.content.decode()
    assert page.status_code == 400 and '<html lang="es">' in html
    assert "Hay un problema" in html
    assert "Escriba una dirección de correo electrónico como nombre@ejemplo.org." in html
    assert "Marque la casilla para dar su consentimiento" in html
    assert "Elija la respuesta que mejor describe su situación actual." in html


def preferences_url(subscriber) -> str:
    return f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/"


def test_a_failed_carer_request_is_summarised_and_described(client):
    ana = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]), first_name="Ana")
    page = client.post(preferences_url(ana), {"action": "carer", "carer_email": "nope"})
    assert page.status_code == 400
    html = page.content.decode()
    found = parsed(html)
    assert_every_description_exists(found)
    assert found.described_by["id_carer_email"] == ["id_carer_email_error"]
    assert found.summary_links == ["#id_carer_email", "#id_mode_0"]
    assert "Choose whether they get your emails instead of you or as well." in html


def test_pause_without_a_length_asks_for_one_and_changes_nothing(client):
    sofia = active_subscriber("sofia@example.org", series("in_treatment", [(0, ["a1"])], language="es"))
    page = client.post(preferences_url(sofia), {"action": "pause"})
    assert page.status_code == 400
    html = page.content.decode()
    assert "Elija cuánto tiempo quiere descansar." in html
    assert parsed(html).summary_links == ["#id_weeks_0"]
    sofia.refresh_from_db()
    assert sofia.status == "active" and sofia.paused_until is None
