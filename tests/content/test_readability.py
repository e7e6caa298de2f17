"""Plain language, checked: the reading level of article bodies (textstat, no downloads), the warning
and the block in load_content, and the starter library within the warning level in both languages."""
from __future__ import annotations

import shutil
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from content import readability
from content.models import Article
from content.parsing import read_library

HARD_EN = (
    "Notwithstanding considerable interindividual heterogeneity, multidisciplinary oncological consultations "
    "frequently necessitate comprehensive documentation of histopathological characteristics, immunohistochemical "
    "profiles and radiological investigations, facilitating individualised therapeutic recommendations.\n"
)
HARD_ES = (
    "No obstante la considerable heterogeneidad interindividual, las consultas oncológicas multidisciplinarias "
    "frecuentemente requieren documentación exhaustiva de características histopatológicas, perfiles "
    "inmunohistoquímicos e investigaciones radiológicas, facilitando recomendaciones terapéuticas individualizadas.\n"
)


EASY_EN = "You can ask for a second opinion. It is fine to ask. Most doctors are glad to help. You can take your time. Talk to your doctor about it.\n"
EASY_ES = "Puede pedir una segunda opinión. Está bien preguntar. Casi todos los médicos quieren ayudar. Puede tomarse su tiempo. Hable con su médico sobre esto.\n"


def test_prose_leaves_out_front_matter_headings_and_link_targets():
    text = "---\ntitle: Something Extraordinarily Complicated\n---\n## A heading nobody reads as prose\n\nSee [the guide](https://example.org/a-very-long-address-indeed) now.\n\n- one item\n"
    prose = readability.prose(text)
    assert prose == "See the guide now.\n\none item."


@pytest.mark.parametrize("language, text, verdict", [("en", HARD_EN, "block"), ("es", HARD_ES, "block"),
                                                     ("en", EASY_EN, "ok"), ("es", EASY_ES, "ok")])
def test_levels_and_verdicts(language, text, verdict):
    level = readability.assess(text, language=language)
    assert level.verdict == verdict, level


def test_warn_between_the_levels(settings):
    long_sentence = (
        "Getting a second opinion can help you feel more sure about your treatment plan and about the choices "
        "you make together with your doctor and your family.\n"
    )
    level = readability.assess(long_sentence, language="en")
    assert level.verdict == "block" and level.score > 12
    settings.NURTURE_READING_GRADE_BLOCK_EN = 14
    level = readability.assess(long_sentence, language="en")
    assert level.verdict == "warn" and 8 < level.score <= 14


def test_a_text_too_short_to_measure_is_never_warned_or_blocked():
    level = readability.assess("Body of welcome-admin-interdisciplinary.\n", language="en")
    assert level.score > 12 and level.verdict == "ok"


def test_the_starter_library_meets_the_warning_level_in_both_languages(library_dir):
    library = read_library(library_dir)
    levels = {(a.language, a.slug): a.reading_level for a in library.articles}
    assert {lang for lang, _slug in levels} == {"en", "es"}
    assert {key: level.describe() for key, level in levels.items() if level.verdict != "ok"} == {}
    assert library.reading_warnings() == []


@pytest.fixture
def library_copy(tmp_path, library_dir):
    target = tmp_path / "library"
    shutil.copytree(library_dir, target)
    return target


@pytest.mark.django_db
def test_load_content_blocks_publishing_past_the_ceiling_unless_a_reviewer_overrides(library_copy):
    path = library_copy / "en" / "welcome.md"
    text = path.read_text(encoding="utf-8")
    head, body = text.split("\n---\n", 1)
    path.write_text(f"{head}\n---\n{HARD_EN}", encoding="utf-8")
    with pytest.raises(CommandError) as error:
        call_command("load_content", "--library-dir", str(library_copy), stdout=StringIO())
    assert "welcome.md" in str(error.value) and "reading level" in str(error.value)
    assert not Article.objects.exists()  # nothing imported

    path.write_text(f"{head}\nreading_level_override: \"Reviewed by R. Lee: the terms are needed here.\"\n---\n{HARD_EN}", encoding="utf-8")
    out = StringIO()
    call_command("load_content", "--library-dir", str(library_copy), stdout=out)
    assert "welcome.md: reading level Flesch-Kincaid grade" in out.getvalue()
    welcome = Article.objects.get(slug="welcome", language="en")
    assert welcome.is_published and welcome.reading_level_override.startswith("Reviewed by R. Lee")


@pytest.mark.django_db
def test_load_content_warns_above_the_warning_level(library_copy, settings):
    settings.NURTURE_READING_EASE_WARN_ES = 95  # every Spanish article is past this
    out = StringIO()
    call_command("load_content", "--library-dir", str(library_copy), stdout=out)
    assert "es/welcome.md: reading level Fernández-Huerta" in out.getvalue()
    assert Article.objects.filter(language="es", status="published").exists()  # a warning does not stop the import
