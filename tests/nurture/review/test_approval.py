"""What people receive is always a reviewed version. Edits wait as drafts, only the
"approve articles" permission approves, approvals are audited, previews show drafts and unsaved
changes, review dates hold overdue articles and remind reviewers, production never sends
unreviewed text, and every email carries its provenance in the reader's language."""
from __future__ import annotations

import datetime as dt
import html
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from content import selectors as content_selectors
from content.checks import articles_reviewed
from content.models import Article, ArticleVersion
from content.services import article_save, review_reminders_send
from nurture.emails.messages import build_step_email
from nurture.models import AuditEntry, Delivery, Subscriber
from nurture.selectors.series import step_hold_reasons, step_is_held_back, step_published_articles
from nurture.services import planning
from support.library import sample_reviewer
from tests.helpers.scheduler import active_subscriber, article, series, send_one
from tests.helpers.staff import CLINICAL_REVIEWERS, CONTENT_EDITORS, staff_user, verified_login

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sample_email(step) -> tuple[str, str]:
    message = build_step_email(step=step, subscriber=Subscriber(first_name="Ana", language=step.series.language), sample_links=True)
    return message.body, message.alternatives[0][0]


def edit(the_article: Article, body: str) -> Article:
    the_article.body_markdown = body
    return article_save(article=the_article)


# --- edits wait for approval ----------------------------------------------------------------------


def test_an_edit_to_approved_text_is_a_draft_and_the_approved_text_is_sent_until_approval():
    the_series = series("in_treatment", [(0, ["drug-history"])])
    step = the_series.steps.get()
    approved = article("drug-history")
    assert approved.is_approved and approved.version == 1
    edit(approved, "A brand new sentence nobody reviewed.")
    approved.refresh_from_db()
    assert approved.body_markdown == "Body of drug-history.\n" or approved.body_html == "<p>Body of drug-history.</p>"
    assert approved.version == 1 and approved.pending_version.is_draft
    assert approved.pending_version.body_markdown == "A brand new sentence nobody reviewed.\n"
    text, html_part = sample_email(step)
    assert "Body of drug-history." in text and "nobody reviewed" not in text + html_part

    # The next real email, planned and sent, carries the approved version too.
    active_subscriber("reader@example.org", the_series)
    planning.deliveries_plan_due()
    delivery = Delivery.objects.get()
    assert send_one(delivery_id=delivery.pk).status == "sent"
    assert "nobody reviewed" not in mail.outbox[-1].body
    assert Delivery.objects.get().article_versions == {str(approved.pk): 1}

    from content.services import article_approve

    reviewer = sample_reviewer()
    version = article_approve(article_id=approved.pk, user=reviewer, role="oncology nurse")
    approved.refresh_from_db()
    assert (version.version, approved.version, approved.pending_version) == (2, 2, None)
    assert not version.is_draft and version.approved_by_name == "Dana Reviewer"
    text, _html = sample_email(step)
    assert "A brand new sentence nobody reviewed." in text
    entry = AuditEntry.objects.filter(action="approve", article_id=approved.pk).order_by("-pk").first()
    assert entry.username == reviewer.username and "v2" in entry.detail


def test_saving_the_same_draft_twice_keeps_one_draft_and_a_status_change_keeps_the_draft():
    approved = article("records")
    edit(approved, "Draft text.")
    approved.refresh_from_db()
    edit(approved, "Draft text.")
    approved.refresh_from_db()
    assert ArticleVersion.objects.filter(article=approved, is_draft=True).count() == 1
    approved.status = Article.Status.DRAFT  # taken out of the emails: a new live version, the draft waits
    article_save(article=approved)
    approved.refresh_from_db()
    assert approved.pending_version.body_markdown == "Draft text.\n" and approved.body_html == "<p>Body of records.</p>"


def test_a_content_editor_cannot_approve_and_a_clinical_reviewer_can(client):
    approved = article("welcome")
    edit(approved, "Changed words for the reviewer to see.")
    url = f"/admin/content/article/{approved.pk}/approve/"
    verified_login(client, staff_user("editor", CONTENT_EDITORS))
    refused = client.post(url, {"confirm": "on"})
    assert refused.status_code == 403 and "approve articles" in refused.content.decode()
    assert Article.objects.get(pk=approved.pk).pending_version_id is not None

    reviewer = staff_user("reviewer", CLINICAL_REVIEWERS)
    reviewer.first_name, reviewer.last_name = "Rosa", "Medina"
    reviewer.save()
    client.logout()
    verified_login(client, reviewer)
    page = client.get(url)
    body = html.unescape(page.content.decode()).replace("\xa0", " ")  # the diff table writes spaces as &nbsp;
    assert page.status_code == 200 and "What changed since the approved text" in body
    assert "Changed words for the reviewer to see." in body and "Body of welcome." in body  # the diff: old and new
    bad = client.post(url, {"confirm": "on", "next_review_on": "2001-01-01"})
    assert bad.status_code == 400 and "after today" in bad.content.decode()
    done = client.post(url, {"confirm": "on", "role": "oncology nurse"})
    assert done.status_code == 302
    approved.refresh_from_db()
    assert approved.pending_version_id is None and approved.approved_by == reviewer
    assert (approved.approved_by_name, approved.approved_by_role) == ("Rosa Medina", "oncology nurse")
    assert approved.next_review_on == content_selectors.months_after(approved.approved_at.date(), 12)
    assert AuditEntry.objects.filter(action="approve", article_id=approved.pk, user=reviewer).exists()


def test_editor_previews_a_draft_and_unsaved_changes_with_their_reading_level(client):
    approved = article("drug-history")
    edit(approved, "The saved draft sentence.")
    verified_login(client, staff_user("editor", CONTENT_EDITORS))
    url = f"/admin/content/article/{approved.pk}/preview/"
    live = client.get(url).content.decode()
    assert "Body of drug-history." in live and "Reviewed" in live and "Dana Reviewer" in live
    draft = client.get(url + "?version=draft").content.decode()
    assert "The saved draft sentence." in draft and "Draft: not yet reviewed by a clinician" in draft
    assert "Draft version 2, awaiting approval" in draft
    hard = "Notwithstanding multifactorial considerations, " * 12 + "institutional documentation."
    unsaved = client.post(url, {"title": "Unsaved title", "body_markdown": hard}).content.decode()
    assert "Unsaved title" in unsaved and "Preview: Unsaved changes" in unsaved and "Reading level" in unsaved
    assert "Flesch-Kincaid" in unsaved
    approved.refresh_from_db()
    assert approved.title != "Unsaved title" and approved.pending_version.body_markdown == "The saved draft sentence.\n"
    # The change form offers the unsaved preview and shows the draft's text to go on editing.
    form = client.get(f"/admin/content/article/{approved.pk}/change/").content.decode()
    assert "Preview unsaved changes" in form and "The saved draft sentence." in form


# --- review dates ----------------------------------------------------------------------------------


def test_reminders_go_30_days_before_and_on_the_due_day_once_each(settings):
    settings.NURTURE_CONTENT_REVIEW_MONTHS = 12
    reviewer_group_member = staff_user("colleague", CLINICAL_REVIEWERS, email="colleague@clinic.example.org")
    assert reviewer_group_member
    with time_machine.travel(NOON, tick=False):
        the_article = article("time-to-decide")
    assert the_article.next_review_on == dt.date(2027, 11, 20)
    with time_machine.travel(dt.datetime(2027, 10, 20, 6, tzinfo=dt.timezone.utc), tick=False):
        assert review_reminders_send() == {"early": 0, "due": 0}  # 31 days before: nothing yet
    with time_machine.travel(dt.datetime(2027, 10, 21, 6, tzinfo=dt.timezone.utc), tick=False):
        assert review_reminders_send() == {"early": 1, "due": 0}
        assert review_reminders_send() == {"early": 0, "due": 0}  # never twice
    early = mail.outbox[-1]
    assert set(early.to) == {"reviewer@example.org", "colleague@clinic.example.org"}
    assert "2027-11-20" in early.body and "time-to-decide" in early.body
    with time_machine.travel(dt.datetime(2027, 11, 20, 6, tzinfo=dt.timezone.utc), tick=False):
        assert review_reminders_send() == {"early": 0, "due": 1}
        assert review_reminders_send() == {"early": 0, "due": 0}
    assert mail.outbox[-1].subject.startswith("Review due:")


def test_an_overdue_article_is_held_with_its_reason_and_the_series_moves_on(settings, client):
    settings.NURTURE_REVIEW_OVERDUE = "hold"
    with time_machine.travel(NOON - dt.timedelta(days=800), tick=False):
        stale = article("old-news")
    fresh = article("fresh-news")
    the_series = series("in_remission", [(0, ["old-news"]), (0, ["fresh-news"])])
    held_step, next_step = the_series.steps.order_by("position")
    reasons = step_hold_reasons(step=held_step)
    assert reasons == [f"“Old News” (en) is past its review date ({stale.next_review_on.isoformat()}): held until approved again"]
    assert step_is_held_back(step=held_step) and not step_is_held_back(step=next_step)
    active_subscriber("reader@example.org", the_series)
    planning.deliveries_plan_due()
    assert list(Delivery.objects.values_list("step_id", flat=True)) == [next_step.pk]
    assert fresh.is_approved

    # The reason shows on the series list, the journey preview and the sending overview.
    verified_login(client, staff_user("boss", superuser=True))
    for url in ("/admin/nurture/series/", "/admin/nurture/email-preview/journey/?stage=in_remission&language=en",
                "/admin/nurture/overview/"):
        page = client.get(url).content.decode()
        assert "past its review date" in page, url

    settings.NURTURE_REVIEW_OVERDUE = "send"
    assert step_published_articles(step_id=held_step.pk) == [stale]


# --- production sends only reviewed text ------------------------------------------------------------


def test_debug_off_never_sends_unreviewed_text_and_the_demo_says_draft(settings):
    unreviewed = article("unreviewed", approved=False)
    the_series = series("recently_diagnosed", [(0, ["unreviewed"])])
    step = the_series.steps.get()
    settings.DEBUG = False
    assert step_published_articles(step_id=step.pk) == []
    assert step_hold_reasons(step=step) == ["“Unreviewed” (en) has not been approved by a clinical reviewer"]
    active_subscriber("reader@example.org", the_series)
    planning.deliveries_plan_due()
    assert not Delivery.objects.exists() and mail.outbox == []
    warnings = {w.id: w.msg for w in articles_reviewed()}
    assert "en/unreviewed" in warnings["content.W001"]

    settings.DEBUG = True  # the demo sends it, saying so in one line
    assert step_published_articles(step_id=step.pk) == [unreviewed]
    text, html_part = sample_email(step)
    assert "Draft: not yet reviewed by a clinician" in text and "Draft: not yet reviewed by a clinician" in html_part
    assert "Reviewed " not in text and "Next review" not in text


def test_check_deploy_lists_overdue_articles(settings):
    with time_machine.travel(NOON - dt.timedelta(days=800), tick=False):
        article("stale-one")
    warnings = {w.id: w.msg for w in articles_reviewed()}
    assert "en/stale-one" in warnings["content.W002"] and "content.W001" not in warnings


def test_approve_articles_command_approves_for_a_named_reviewer_and_audits_it():
    article("one", approved=False)
    article("two", approved=False)
    article("uno", language="es", approved=False)
    reviewer = staff_user("dr-lee", CLINICAL_REVIEWERS)
    out = StringIO()
    call_command("approve_articles", "--reviewer", "dr-lee", "--language", "es", stdout=out)
    assert "approved es/uno v1" in out.getvalue()
    assert set(Article.objects.filter(approved_by=reviewer).values_list("slug", flat=True)) == {"uno"}
    call_command("approve_articles", "one", "--reviewer", "dr-lee", "--role", "oncologist", stdout=StringIO())
    one = Article.objects.get(slug="one")
    assert one.approved_by_role == "oncologist" and not Article.objects.get(slug="two").is_approved
    entries = AuditEntry.objects.filter(action="approve", user=reviewer)
    assert entries.count() == 2 and {e.article_id for e in entries} == {one.pk, Article.objects.get(slug="uno").pk}

    with pytest.raises(CommandError, match="no user"):
        call_command("approve_articles", "--reviewer", "nobody-here", stdout=StringIO())
    staff_user("writer", CONTENT_EDITORS)
    with pytest.raises(CommandError, match="approve articles"):
        call_command("approve_articles", "two", "--reviewer", "writer", stdout=StringIO())
    with pytest.raises(CommandError, match="No such article: missing"):
        call_command("approve_articles", "missing", "--reviewer", "dr-lee", stdout=StringIO())
    assert not Article.objects.get(slug="two").is_approved


# --- provenance -------------------------------------------------------------------------------------


@pytest.mark.parametrize("language, reviewed, next_review, source", [
    ("en", "Reviewed November 2026 by Dana Reviewer, oncology nurse.", "Next review November 2027.",
     "Based on the guide “Seeking a Second Opinion” by the American Cancer Society, last revised 31 July 2025."),
    ("es", "Revisado en noviembre de 2026 por Dana Reviewer, oncology nurse.", "Próxima revisión: noviembre de 2027.",
     "Basado en la guía en inglés «Seeking a Second Opinion» (Cómo buscar una segunda opinión), de la American Cancer Society"),
])
def test_every_email_shows_source_reviewer_and_dates_in_the_readers_language(language, reviewed, next_review, source):
    with time_machine.travel(NOON, tick=False):
        article("notes", language=language)
    step = series("in_treatment", [(0, ["notes"])], language=language).steps.get()
    text, html_part = sample_email(step)
    for part in (text, html_part):
        flat = " ".join(part.split())
        assert reviewed.rstrip(".") in flat and next_review in flat and source in flat
        assert "Draft: not yet reviewed" not in flat and "Borrador" not in flat
