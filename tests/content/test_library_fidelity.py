"""The library stays faithful to the revised guide and complete for every stage.

Coverage matrix (content/library/coverage.yaml): every point has an article in both languages, its seed line
exists and says what the matrix quotes, and every stage receives it or records why not. Articles tagged for a
stage are in that stage's series. Cross references stay inside the reader's series. Cited sections exist.
No long runs of words pasted from the guide, no older-text phrasing the revision dropped, no invented reviewer,
and every article within the reading-level gate.
"""
from __future__ import annotations

import re

import pytest

from content import readability, sources
from content.models import Language, Stage
from content.parsing import read_library
from content.rendering import article_link_slugs
from tests.content import seeds


@pytest.fixture(scope="module")
def library():
    return read_library(seeds.LIBRARY)


@pytest.fixture(scope="module")
def matrix():
    return seeds.coverage()


def series_slugs(library, language: str, stage: str) -> list[str]:
    entry = next(s for s in library.series if s.language == language and s.stage == stage)
    return [slug for step in entry.steps for slug in step.article_slugs]


def articles_by_slug(library, language: str) -> dict:
    return {a.slug: a for a in library.articles if a.language == language}


needs_seeds = pytest.mark.skipif(seeds.seeds_dir() is None, reason="the seed guide (../shared/seeds or NURTURE_SEEDS_DIR) is not next to this checkout")


# --- the coverage matrix -------------------------------------------------------------------------------------

def test_every_point_has_an_article_in_both_languages(matrix, library):
    assert matrix["points"], "the matrix lists the guide's points"
    for point in matrix["points"]:
        assert point["articles"], f"{point['label']}: no article carries it"
        for language in Language.values:
            missing = set(point["articles"]) - set(articles_by_slug(library, language))
            assert not missing, f"{point['label']} ({language}): no article {sorted(missing)}"


def test_every_stage_receives_every_point_or_records_why_not(matrix, library):
    for point in matrix["points"]:
        left_out = point.get("left_out") or {}
        assert set(left_out) <= set(Stage.values), point["label"]
        for language in Language.values:
            for stage in Stage.values:
                received = set(point["articles"]) & set(series_slugs(library, language, stage))
                if received:
                    assert stage not in left_out, f"{point['label']}: {stage} ({language}) receives it, but a reason says it is left out"
                else:
                    assert left_out.get(stage, "").strip(), f"{point['label']}: the {stage} series ({language}) never carries it, and no reason is recorded"


def test_an_article_tagged_for_a_stage_is_in_that_stage_series(matrix, library):
    exceptions = matrix.get("series_exceptions") or {}
    for article in library.articles:
        for stage in Stage.values:
            in_series = article.slug in series_slugs(library, article.language, stage)
            if stage in article.stages and not in_series:
                assert (exceptions.get(article.slug) or {}).get(stage, "").strip(), (
                    f"{article.language}/{article.slug} is tagged {stage} but the {stage} series leaves it out, with no reason recorded")
            if in_series:
                assert stage in article.stages, f"{article.language}/{article.slug} is in the {stage} series but not tagged for it"


def test_every_article_is_in_the_matrix(matrix, library):
    carried = {slug for point in matrix["points"] for slug in point["articles"]}
    assert {a.slug for a in library.articles} <= carried


@needs_seeds
def test_each_point_cites_a_seed_line_that_says_it(matrix):
    for point in matrix["points"]:
        key, line = point["seed"].split(":")
        lines = seeds.seed_lines(key)
        assert 1 <= int(line) <= len(lines), point
        assert point["quote"].lower() in lines[int(line) - 1].lower(), f"{point['label']}: seed {point['seed']} does not say {point['quote']!r}"


def test_the_matrix_prefers_the_revision(matrix):
    """The older text (000) is cited only for lists the revision's copy lost (its bullet points)."""
    older = [p for p in matrix["points"] if p["seed"].startswith("000:")]
    assert len(older) <= 5, [p["label"] for p in older]


# --- the series ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", Stage.values)
@pytest.mark.parametrize("language", Language.values)
def test_cross_references_stay_inside_the_reader_series(library, language, stage):
    in_series = set(series_slugs(library, language, stage))
    articles = articles_by_slug(library, language)
    for slug in in_series:
        for _, target in article_link_slugs(articles[slug].body_markdown):
            assert target in in_series, f"{language}/{slug} links to {target}, which the {stage} series never sends"


def test_in_treatment_gets_insurance_and_finding_a_doctor_but_not_time_to_decide(library):
    for language in Language.values:
        slugs = series_slugs(library, language, Stage.IN_TREATMENT)
        assert {"check-insurance-first", "where-to-find-another-doctor"} <= set(slugs)
        assert "time-to-decide" not in slugs


def test_what_matters_before_treatment_is_marked_so(library):
    for entry in library.series:
        if entry.stage != Stage.RECENTLY_DIAGNOSED:
            continue
        for step in entry.steps:
            if {"where-to-find-another-doctor", "check-insurance-first", "time-to-decide"} & set(step.article_slugs):
                assert step.before_treatment, (entry.language, step.subject)


# --- fidelity ----------------------------------------------------------------------------------------------------

def test_cited_sections_are_sections_of_the_guide(library):
    for article in library.articles:
        assert sources.source_sections(article.source_section), article.slug
        assert not sources.unknown_sections(article.source_section), (article.slug, article.source_section)


@needs_seeds
def test_the_known_sections_are_the_seed_headings():
    headings = {line.strip() for line in seeds.seed_lines("000")}
    assert set(sources.SECTIONS) <= headings


@needs_seeds
def test_the_fingerprint_matches_the_seeds():
    assert seeds.fingerprint() == seeds.fingerprint_from_seeds(), "run: python -m tests.content.seeds"


def test_no_article_pastes_a_run_of_the_guide(library):
    guide_runs = set(seeds.fingerprint()["runs"])
    assert seeds.fingerprint()["run_length"] == seeds.RUN
    for article in library.articles:
        pasted = sorted(run for run in seeds.runs(article.body_markdown) if seeds.run_hash(run) in guide_runs)
        assert not pasted, f"{article.language}/{article.slug} repeats the guide word for word: {pasted[:3]}"


def test_the_paste_check_catches_a_pasted_sentence():
    sentence = "Some people find it hard to tell their doctors that they would like a second opinion."
    assert {seeds.run_hash(run) for run in seeds.runs(sentence)} & set(seeds.fingerprint()["runs"])


# Older-text positions the revision dropped, and claims the guide does not make.
BANNED = {
    "en": [
        "comfortable with the request", "at ease", "offended", "take offense", "most doctors", "many people find",
        "for many people", "most often", "you can still ask", "just ask", "a short call", "very few decisions",
        "very few treatment decisions", "feel more sure", "can give you copies", "depend on the type of cancer",
        "companion", "some insurance companies", "other places to look", "nurture content team",
    ],
    "es": [
        "se sienten cómodos", "se ofenden", "la mayoría de los médicos", "a muchas personas esto", "todavía puede pedirla",
        "solo tiene que pedirla", "llamada corta", "muy pocas decisiones", "algunas compañías de seguros",
        "puede darle copias", "compañía para", "otros lugares donde buscar", "depender del tipo de cáncer",
    ],
}


@pytest.mark.parametrize("language", Language.values)
def test_no_older_text_phrasing_or_overclaim(library, language):
    for article in library.articles:
        if article.language != language:
            continue
        text = f"{article.title}\n{article.body_markdown}".lower()
        found = [phrase for phrase in BANNED[language] if phrase in text]
        assert not found, f"{language}/{article.slug}: {found}"


def test_no_invented_reviewer(library):
    """Nobody qualified has reviewed the starter library, so nobody is named."""
    for article in library.articles:
        assert article.reviewer == "", f"{article.language}/{article.slug} names {article.reviewer!r}"


def test_every_article_is_within_the_reading_level_gate(library):
    for article in library.articles:
        level = readability.assess(article.body_markdown, language=article.language)
        assert level.verdict == readability.OK, f"{article.language}/{article.slug}: {level.describe()}"


def test_the_helpline_reference_has_something_to_point_at(library):
    """where-to-find-another-doctor sends readers to the helpline printed at the end of every message."""
    for language, word in (("en", "helpline"), ("es", "línea de ayuda")):
        body = articles_by_slug(library, language)["where-to-find-another-doctor"].body_markdown
        assert word in body
        assert not re.search(r"\d{3}-\d{3}-\d{4}", body), "the number comes from NURTURE_ORG_HELPLINE, not the article"
