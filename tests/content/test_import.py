"""load_content / library_import: the real library, idempotence, staff-edit protection, --force, series."""
from __future__ import annotations

import re
import shutil
from io import StringIO

import pytest
from django.core.management import call_command

from content.models import Article, ArticleVersion, Language, Stage
from content.services import article_save
from nurture.services.library import library_import
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


def replace_in(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_changed_file_updates_the_article_as_a_new_version(library_copy):
    library_import(library_dir=library_copy)
    replace_in(library_copy / "en" / "drug-history.md", "It is worth taking", "It pays to take")
    output = run_load_content("--library-dir", str(library_copy))
    assert "updated article en/drug-history" in output
    article = Article.objects.get(slug="drug-history", language="en")
    assert article.version == 2
    assert "It pays to take" in article.body_html
    assert "It is worth taking" in ArticleVersion.objects.get(article=article, version=1).body_markdown


def test_staff_edit_stands_while_the_file_is_unchanged(library_copy):
    library_import(library_dir=library_copy)
    article = Article.objects.get(slug="welcome", language="es")
    article.reviewer = "Lic. Marta Gil, traductora"
    article_save(article=article)
    assert "No changes" in run_load_content("--library-dir", str(library_copy))
    article.refresh_from_db()
    assert article.reviewer == "Lic. Marta Gil, traductora"


def test_staff_edit_that_matches_the_new_file_is_no_conflict(library_copy):
    library_import(library_dir=library_copy)
    article = Article.objects.get(slug="welcome", language="es")
    article.reviewer = "Lic. Marta Gil"
    article_save(article=article)
    replace_in(library_copy / "es" / "welcome.md", 'reviewer: ""', 'reviewer: "Lic. Marta Gil"')
    output = run_load_content("--library-dir", str(library_copy))
    assert "kept staff edits" not in output and "No changes" in output
    # ... and from now on a file change applies normally, since the article matches its file again.
    replace_in(library_copy / "es" / "welcome.md", "Gracias", "Muchas gracias")
    assert "updated article es/welcome" in run_load_content("--library-dir", str(library_copy))


def series_steps(stage="in_remission", language="en") -> list[tuple]:
    series = Series.objects.get(stage=stage, language=language)
    return [
        (s.position, s.delay_days, s.subject, [sa.article.slug for sa in StepArticle.objects.filter(step=s).order_by("order")])
        for s in series.steps.order_by("position")
    ]


def test_changed_series_file_updates_steps_in_place(library_copy):
    library_import(library_dir=library_copy)
    step_ids = list(Series.objects.get(stage="in_remission", language="en").steps.order_by("position").values_list("pk", flat=True))
    replace_in(library_copy / "en" / "_series.yaml", 'subject: "Keep your own copies"', 'subject: "Keep a set of your own"')
    replace_in(library_copy / "en" / "_series.yaml", "articles: [keeping-your-records]", "articles: [keeping-your-records, drug-history]")
    output = run_load_content("--library-dir", str(library_copy))
    assert "updated series en/in_remission" in output
    steps = series_steps()
    assert steps[1][2:] == ("Keep a set of your own", ["keeping-your-records", "drug-history"])
    assert [p for p, *_ in steps] == list(range(len(steps)))
    # Same rows: deliveries and subscribers' places in the series still point at the same steps.
    assert list(Series.objects.get(stage="in_remission", language="en").steps.order_by("position").values_list("pk", flat=True)) == step_ids


def test_series_staff_edits_kept_unless_force(library_copy):
    library_import(library_dir=library_copy)
    step = Series.objects.get(stage="in_remission", language="en").steps.get(position=0)
    step.subject = "Hello from the team"
    step.save()
    replace_in(library_copy / "en" / "_series.yaml", "delay_days: 7", "delay_days: 8")
    output = run_load_content("--library-dir", str(library_copy))
    assert "kept staff edits to series en/in_remission" in output
    assert series_steps()[0][2] == "Hello from the team"
    assert series_steps()[-1][1] == 7
    output = run_load_content("--library-dir", str(library_copy), "--force")
    assert "replaced staff edits to series en/in_remission" in output
    assert series_steps()[0][2] == "Welcome to your guide"
    assert series_steps()[-1][1] == 8


def test_step_dropped_from_the_file_is_deleted_unless_it_has_deliveries(library_copy):
    library_import(library_dir=library_copy)
    series = Series.objects.get(stage="in_remission", language="en")
    last = series.steps.order_by("position").last()
    subscriber = Subscriber.objects.create(email="reader@example.org", stage="in_remission", language="en", series=series)
    Delivery.objects.create(subscriber=subscriber, step=last, status=Delivery.Status.SENT)
    count = series.steps.count()
    # Drop the last two steps from the file: the one without deliveries goes, the delivered one stays.
    text = (library_copy / "en" / "_series.yaml").read_text(encoding="utf-8")
    head, tail = text.split("in_remission:", 1)
    steps = tail.split("    - delay_days:")
    (library_copy / "en" / "_series.yaml").write_text(head + "in_remission:" + "    - delay_days:".join(steps[:-2]), encoding="utf-8")
    # welcome links to what-the-studies-say, no longer in that series: a link must lead inside the series.
    welcome = library_copy / "en" / "welcome.md"
    welcome.write_text(re.sub(r"\[([^\]]+)\]\(article:what-the-studies-say\)", r"\1", welcome.read_text(encoding="utf-8")), encoding="utf-8")
    output = run_load_content("--library-dir", str(library_copy))
    assert "updated series en/in_remission" in output
    assert f"kept en/in_remission step {last.position + 1}" in output and "has deliveries" in output
    remaining = list(series.steps.order_by("position").values_list("pk", flat=True))
    assert len(remaining) == count - 1
    assert remaining[-1] == last.pk
    assert "No changes" in run_load_content("--library-dir", str(library_copy))
