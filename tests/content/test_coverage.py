"""The library covers every topic of the guide in both languages, and the two languages match."""
from __future__ import annotations

from pathlib import Path

import pytest

from content.parsing import read_library

# Topic -> (English terms, Spanish terms); every term must appear somewhere in that language's articles.
TOPICS = {
    "why people ask and their reasons": (["second opinion", "rare", "peace of mind"], ["segunda opinión", "raro", "tranquilidad"]),
    "usually time to think; a few cancers cannot wait; ask about waiting": (
        ["take time", "right away", "how long you have to decide"],
        ["tomarse un tiempo", "de inmediato", "cuánto tiempo tiene para decidir"],
    ),
    "remembering what the doctor says": (
        ["notes", "record your talks", "family member"],
        ["notas", "grabar", "familiar"],
    ),
    "raising it: conversation starters; doctors may or may not be fine with it": (
        ["I am thinking about a second opinion", "Some doctors may be fine with it, and some may not"],
        ["Estoy pensando en pedir una segunda opinión", "A algunos médicos puede parecerles bien y a otros quizás no"],
    ),
    "check insurance first": (["insurance company", "health plan"], ["compañía de seguros", "red de su seguro médico"]),
    "records to have ready": (
        ["pathology", "operative", "discharge", "treatment plan", "dose"],
        ["patología", "quirúrgico", "alta", "plan de tratamiento", "dosis"],
    ),
    "how to get records": (
        ["doctor's office", "medical records department", "portal", "keep a copy"],
        ["consultorio", "departamento de registros médicos", "portal", "propias copias"],
    ),
    "where to find another doctor": (["oncologist", "suggest another doctor", "helpline"], ["oncólogo", "le recomiende a otro médico", "línea de ayuda"]),
    "making sense of a different opinion": (
        ["pathologist", "surgeon", "medical oncologist", "radiation oncologist"],
        ["patólogo", "cirujano", "oncólogo clínico", "oncólogo radioterapeuta"],
    ),
    "NCCN guidelines and NCI PDQ summaries, patient versions": (
        ["NCCN", "PDQ", "National Cancer Institute", "for patients"],
        ["NCCN", "PDQ", "Instituto Nacional del Cáncer", "para pacientes"],
    ),
    "studies leave the benefits unclear": (["studies show", "benefits", "unclear"], ["estudios", "beneficios", "no están claros"]),
}


@pytest.fixture(scope="module")
def library():
    return read_library(Path(__file__).resolve().parents[2] / "content" / "library")


def language_text(library, language: str) -> str:
    return "\n".join(f"{a.title}\n{a.body_markdown}" for a in library.articles if a.language == language).lower()


@pytest.mark.parametrize("topic", TOPICS, ids=list(TOPICS))
def test_topic_is_covered_in_both_languages(library, topic):
    english, spanish = TOPICS[topic]
    for language, terms in (("en", english), ("es", spanish)):
        text = language_text(library, language)
        missing = [term for term in terms if term.lower() not in text]
        assert not missing, f"{topic} ({language}): missing {missing}"


def test_every_article_exists_in_both_languages_with_the_same_stages(library):
    by_language = {lang: {a.slug: a for a in library.articles if a.language == lang} for lang in ("en", "es")}
    assert set(by_language["en"]) == set(by_language["es"])
    for slug, english in by_language["en"].items():
        spanish = by_language["es"][slug]
        assert english.stages == spanish.stages, slug
        assert english.source_section == spanish.source_section, slug


def test_no_article_names_a_reviewer_until_a_qualified_person_signs_it(library):
    """Nobody qualified has reviewed the starter library in either language, so its reviewer is empty: the
    admin shows a Spanish one as 'awaiting review by a qualified translator'."""
    for article in library.articles:
        assert article.reviewer == "", (article.language, article.slug)


def test_every_series_step_has_the_same_shape_in_both_languages(library):
    shape = {
        (s.language, s.stage): [(step.delay_days, step.article_slugs) for step in s.steps] for s in library.series
    }
    for (language, stage), steps in shape.items():
        if language == "en":
            assert shape[("es", stage)] == steps, stage
