"""load_content / library_import: the real library, idempotence, staff-edit protection, --force, series."""
from __future__ import annotations

import shutil
from io import StringIO

import pytest
from django.core.management import call_command

from content.models import Article, ArticleVersion, Language, Stage
from content.services import article_save, library_import
from nurture.models import Delivery, Series, Step, StepArticle, Subscriber

pytestmark = pytest.mark.django_db


def run_load_content(*args) -> str:
    out = StringIO()
    call_command("load_content", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def library_copy(tmp_path, library_dir):
    target = tmp_path / "library"
    shutil.copytree(library_dir, target)
    return target


def db_state() -> dict:
    """Everything the import writes, to compare before and after a run."""
    return {
        "articles": list(Article.objects.order_by("pk").values()),
        "versions": list(ArticleVersion.objects.order_by("pk").values()),
        "series": list(Series.objects.order_by("pk").values()),
        "steps": list(Step.objects.order_by("pk").values()),
        "step_articles": list(StepArticle.objects.order_by("pk").values()),
    }


def test_real_library_imports_every_stage_and_language(library_dir):
    output = run_load_content()
    files = {(p.parent.name, p.stem) for p in library_dir.glob("*/*.md")}
    assert {(a.language, a.slug) for a in Article.objects.all()} == files
    assert f"{len(files)} articles created" in output
    for stage in Stage.values:
        for language in Language.values:
            series = Series.objects.get(stage=stage, language=language)
            steps = list(series.steps.order_by("position"))
            assert 6 <= len(steps) <= 10, (stage, language, len(steps))
            assert [s.position for s in steps] == list(range(len(steps)))
            for step in steps:
                assert StepArticle.objects.filter(step=step).exists()
                assert all(a.language == language for a in step.articles.all())


def test_second_run_changes_nothing_and_says_so():
    run_load_content()
    before = db_state()
    output = run_load_content()
    assert "No changes: 32 articles, 6 series already up to date" in output
    assert db_state() == before


def test_staff_edit_kept_when_file_changes_and_replaced_with_force(library_copy):
    library_import(library_dir=library_copy)
    article = Article.objects.get(slug="drug-history", language="es")
    article.reviewer = "Dra. Ana Ruiz"
    article_save(article=article)
    path = library_copy / "es" / "drug-history.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Vale la pena", "Merece la pena"), encoding="utf-8")

    output = run_load_content("--library-dir", str(library_copy))
    assert "kept staff edits to article es/drug-history" in output
    article.refresh_from_db()
    assert article.reviewer == "Dra. Ana Ruiz"
    assert "Vale la pena" in article.body_markdown

    output = run_load_content("--library-dir", str(library_copy), "--force")
    assert "replaced staff edits to article es/drug-history" in output
    article.refresh_from_db()
    assert article.reviewer == ""
    assert "Merece la pena" in article.body_markdown
