"""article_save keeps every version; the reads the sender and admin use."""
from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from content import selectors
from content.models import Article, ArticleVersion
from content.services import article_approve, article_save
from support.library import sample_reviewer
from nurture.models import Series, Step, StepArticle
from nurture.selectors.series import step_hold_reasons, step_is_held_back, step_published_articles

pytestmark = pytest.mark.django_db


def make_article(slug="notes", language="en", status=Article.Status.PUBLISHED, approved=False, **extra) -> Article:
    fields = dict(
        slug=slug, language=language, title=f"Title {slug}", stages=["in_treatment"], source_section="A section",
        body_markdown="A first body.", status=status, reviewer="Reviewer", last_reviewed=dt.date(2026, 1, 1),
    )
    fields.update(extra)
    article = article_save(article=Article(**fields))
    if approved:  # by a clinical reviewer: with DEBUG off only approved text is sent
        article_approve(article_id=article.pk, user=sample_reviewer(), role="oncology nurse")
        article.refresh_from_db()
    return article


def test_new_article_is_version_one_with_its_snapshot_and_html():
    article = make_article(body_markdown="Hello **there**.")
    assert article.version == 1
    assert article.body_html == "<p>Hello <strong>there</strong>.</p>"
    snapshot = ArticleVersion.objects.get(article=article)
    assert (snapshot.version, snapshot.title, snapshot.body_markdown, snapshot.status) == (
        1, article.title, article.body_markdown, article.status)


def test_each_change_of_title_body_or_status_is_a_new_version_and_old_ones_stay():
    article = make_article()
    article.body_markdown = "A second body."
    article_save(article=article)
    article.title = "A new title"
    article_save(article=article)
    article.status = Article.Status.DRAFT
    article_save(article=article)
    article.refresh_from_db()
    assert article.version == 4
    history = list(ArticleVersion.objects.filter(article=article).order_by("version").values_list("version", "title", "body_markdown", "status"))
    assert history == [
        (1, "Title notes", "A first body.\n", "published"),
        (2, "Title notes", "A second body.\n", "published"),
        (3, "A new title", "A second body.\n", "published"),
        (4, "A new title", "A second body.\n", "draft"),
    ]
    assert ArticleVersion.objects.get(article=article, version=2).body_html == "<p>A second body.</p>"


def test_saving_without_a_content_change_keeps_the_version():
    article = make_article(body_markdown="Line one.\nLine two.")
    article.body_markdown = "Line one.\r\nLine two.\r\n"  # what a browser textarea submits
    article.reviewer = "Someone else"  # review fields are not content: no new version
    article_save(article=article)
    article.refresh_from_db()
    assert article.version == 1
    assert ArticleVersion.objects.filter(article=article).count() == 1
    assert article.reviewer == "Someone else"


def test_body_html_is_always_derived_and_sanitised_on_save():
    article = make_article()
    article.body_html = "<script>forged()</script>"
    article.body_markdown = "New <script>x()</script> text"
    article_save(article=article)
    article.refresh_from_db()
    assert "script" not in article.body_html and "forged" not in article.body_html
    assert article.body_html.startswith("<p>New")


def make_step(articles: list[Article], language="en") -> Step:
    series, _ = Series.objects.get_or_create(stage="in_treatment", language=language, defaults={"name": "S"})
    step = Step.objects.create(series=series, position=series.steps.count(), delay_days=1, subject="A note")
    for order, article in enumerate(articles):
        StepArticle.objects.create(step=step, article=article, order=order)
    return step


def test_sendable_articles_are_the_published_ones_in_step_order():
    late = make_article("late", approved=True)
    draft = make_article("draft-one", status=Article.Status.DRAFT)
    early = make_article("early", approved=True)
    in_review = make_article("reviewing", status=Article.Status.IN_REVIEW)
    step = make_step([early, draft, in_review, late])
    # Reorder so step order differs from creation (pk) order.
    StepArticle.objects.filter(step=step, article=late).update(order=0)
    StepArticle.objects.filter(step=step, article=early).update(order=5)
    # The read the email builder uses to choose what a step carries.
    assert step_published_articles(step_id=step.pk) == [late, early]


def test_hold_reasons_name_each_unpublished_article():
    published = make_article("ready", approved=True)
    draft = make_article("drug-history", language="es", status=Article.Status.DRAFT)
    partly = make_step([published])
    assert step_hold_reasons(step=partly) == []
    assert not step_is_held_back(step=partly)

    held = make_step([draft], language="es")
    assert step_hold_reasons(step=held) == ["“Title drug-history” (es) is in draft"]
    assert step_is_held_back(step=held)

    empty = make_step([])
    assert step_hold_reasons(step=empty) == ["the step has no articles"]
    assert step_is_held_back(step=empty)


def test_review_overdue_follows_the_next_review_date(settings):
    """Overdue: never approved, or past the next review date the approval set (NURTURE_CONTENT_REVIEW_MONTHS)."""
    settings.NURTURE_CONTENT_REVIEW_MONTHS = 12
    with time_machine.travel(dt.datetime(2025, 11, 22, 12, tzinfo=dt.timezone.utc), tick=False):
        recent = make_article("recent", approved=True)
    with time_machine.travel(dt.datetime(2025, 11, 19, 12, tzinfo=dt.timezone.utc), tick=False):
        old = make_article("old", approved=True)
    never = make_article("never", status=Article.Status.DRAFT)
    assert (recent.next_review_on, old.next_review_on) == (dt.date(2026, 11, 22), dt.date(2026, 11, 19))
    today = dt.date(2026, 11, 21)
    assert not selectors.review_is_overdue(article=recent, today=today)
    assert selectors.review_is_overdue(article=old, today=today)
    assert selectors.review_is_overdue(article=never, today=today)
    assert set(selectors.articles_review_overdue(today=today)) == {old, never}


def test_next_review_date_handles_short_months():
    assert selectors.months_after(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert selectors.months_after(dt.date(2026, 11, 15), 13) == dt.date(2027, 12, 15)
