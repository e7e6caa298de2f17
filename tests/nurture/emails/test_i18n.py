"""The Spanish catalogue: complete for every template string, compiled, and used."""
from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.utils import translation
from django.utils.translation.template import templatize

from content.models import Stage
from nurture.emails.cache import render_cache
from nurture.emails.links import greeting_for
from nurture.emails.messages import build_confirmation_email, build_delivery_email
from nurture.web.forms import CONSENT_TEXT, SignupForm
from nurture.models import Delivery, Step, Subscriber
from support.library import load_default_library

ROOT = Path(__file__).resolve().parents[3]
PO = ROOT / "locale" / "es" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _po_entries(text: str) -> dict[str, list[str]]:
    """msgid -> msgstr(s) from a .po file (enough of the format for the files we write)."""
    entries: dict[str, list[str]] = {}
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        fields: dict[str, str] = {}
        current = None
        for line in lines:
            match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d\])?) (".*")$', line)
            if match:
                current = match.group(1)
                fields[current] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and current:
                fields[current] += ast.literal_eval(line)
        if fields.get("msgid"):
            entries[fields["msgid"]] = [v for k, v in sorted(fields.items()) if k.startswith("msgstr")]
    return entries


def _template_msgids() -> set[str]:
    """Every string marked for translation in templates/ (what makemessages would extract)."""
    found = set()
    for path in (ROOT / "templates").rglob("*"):
        if path.suffix not in {".html", ".txt"} or not path.is_file():
            continue
        source = templatize(path.read_text(encoding="utf-8"), origin=str(path))
        for call in re.finditer(r"\b(?:n?gettext|pgettext|npgettext)\((u?'(?:[^'\\]|\\.)*')", source):
            found.add(ast.literal_eval(call.group(1)))
    return found


def test_every_template_string_has_a_spanish_translation():
    entries = _po_entries(PO.read_text(encoding="utf-8"))
    msgids = _template_msgids()
    assert len(msgids) > 60  # the extraction itself works
    missing = sorted(m for m in msgids if not any(entries.get(m, [""])))
    assert missing == []
    assert "#, fuzzy" not in PO.read_text(encoding="utf-8").split("\n\n", 1)[1]


def test_compiled_catalogue_matches_the_po_file():
    """The .mo is committed (CI needs no gettext tools): it must not fall behind the .po."""
    entries = _po_entries(PO.read_text(encoding="utf-8"))
    with MO.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    for msgid, msgstrs in entries.items():
        if len(msgstrs) == 1:
            assert catalogue.gettext(msgid) == msgstrs[0], msgid
        else:
            assert catalogue.ngettext(msgid, msgid + "s", 1) == msgstrs[0], msgid


def test_python_strings_are_translated():
    with translation.override("es"):
        assert str(Stage.IN_TREATMENT.label) == "En tratamiento"
        assert str(SignupForm().fields["email"].label) == "Correo electrónico"
        assert str(CONSENT_TEXT).startswith("Sí, ")
        assert greeting_for("Ana", language="es") == "Hola, Ana:"


@pytest.mark.parametrize("welcome_back", [False, True])
@pytest.mark.parametrize("name", ["Ana", ""])
def test_a_greeting_is_in_the_subscribers_language_and_leaves_the_active_one_alone(name, welcome_back):
    """greeting_for translates without switching the thread's language (a sender greets thousands
    in a row): what it says is what gettext says under an override, and nothing else changes."""
    with translation.override("en"):
        spanish = greeting_for(name, language="es", welcome_back=welcome_back)
        assert translation.get_language() == "en"
        english = greeting_for(name, language="en", welcome_back=welcome_back)
    with translation.override("es"):
        expected = (translation.gettext("Hello %(name)s, welcome back. Here is where we were.") % {"name": name}
                    if welcome_back and name else translation.gettext("Hello, welcome back. Here is where we were.")
                    if welcome_back else translation.gettext("Hello %(name)s,") % {"name": name}
                    if name else translation.gettext("Hello,"))
    assert spanish == expected and spanish.startswith("Hola")
    assert english.startswith("Hello") and ("welcome back" in english) == welcome_back
    assert ("Ana" in spanish) == bool(name)


@pytest.mark.django_db
def test_spanish_email_and_pages_use_spanish_layout_strings(client):
    load_default_library()
    render_cache.clear()
    step = Step.objects.filter(series__language="es").first()
    subscriber = Subscriber.objects.create(email="es@example.org", first_name="Ana", stage="in_treatment", language="es")
    message = build_delivery_email(Delivery.objects.create(subscriber=subscriber, step=step))
    for part in (message.body, message.alternatives[0][0]):
        assert "Revise esta información con su médico" in part
        assert "Dejar de recibir estos correos" in part and "Cambiar sus preferencias" in part
        assert "Basado en la guía" in part and "Línea de ayuda" in part
        assert "Stop these emails" not in part
    confirmation = build_confirmation_email(subscriber)
    assert "Confirme su suscripción" == confirmation.subject
    assert "Confirmar y empezar a recibir mis correos" in confirmation.alternatives[0][0]

    page = client.get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Empiece aquí: correos sobre cómo obtener una segunda opinión" in page and 'lang="es"' in page
    from nurture import tokens

    token = tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber.pk)
    assert "¿Dejar de recibir estos correos?" in client.get(f"/unsubscribe/{token}/").content.decode()
