"""Writes for the guide's content: saving an article (with its version history) and importing articles.

The series in the library are the engine's (nurture.services.library imports them, and runs the
whole import). Both the admin and `load_content` go through `article_save`, so an article's HTML, version number and
snapshots follow one rule wherever the change comes from.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from content import readability, selectors
from content.models import Article, ArticleVersion
from content.signals import article_approved
from content.parsing import ArticleFile, as_library_problem
from content.rendering import normalise_markdown, render_article_html

# A change to any of these is a new version of the article: what a subscriber reads, or whether they may.
VERSIONED_FIELDS = ("title", "body_markdown", "status")
CLINICAL_REVIEWERS = "Clinical reviewers"  # the role (group) holding content.approve_article
APPROVE_PERMISSION = "content.approve_article"


def default_library_dir() -> Path:
    return Path(settings.BASE_DIR) / "content" / "library"


# --- articles -------------------------------------------------------------------------------------------


def _next_version_number(article: Article) -> int:
    return (ArticleVersion.objects.filter(article=article).aggregate(top=Max("version"))["top"] or 0) + 1


def _snapshot(article: Article) -> ArticleVersion:
    """The live text at article.version, with its approval (if any)."""
    return ArticleVersion.objects.create(
        article=article,
        version=article.version,
        title=article.title,
        body_markdown=article.body_markdown,
        body_html=article.body_html,
        status=article.status,
        approved_by=article.approved_by,
        approved_by_name=article.approved_by_name,
        approved_by_role=article.approved_by_role,
        approved_at=article.approved_at,
        next_review_on=article.next_review_on,
    )


def _keep_edit_as_draft(*, article: Article, previous: Article) -> None:
    """The article's text is approved: its edited title and body become a draft version (the
    pending one) and the instance goes back to the approved text, which readers keep receiving."""
    title, body_markdown, body_html = article.title, article.body_markdown, article.body_html
    article.title, article.body_markdown, article.body_html = previous.title, previous.body_markdown, previous.body_html
    pending = previous.pending_version
    if pending is not None and (pending.title, pending.body_markdown) == (title, body_markdown):
        article.pending_version = pending
        return  # the same draft saved again
    article.pending_version = ArticleVersion.objects.create(
        article=article, version=_next_version_number(article), title=title, body_markdown=body_markdown,
        body_html=body_html, status=article.status, is_draft=True,
    )


@transaction.atomic
def article_save(*, article: Article) -> Article:
    """Save an article: derive body_html, and when title, body or status changed, bump the version
    and keep a snapshot of the new version (every version is kept, so a delivery's {article id: version}
    always resolves to exactly what was sent).

    Approved text is never changed here: an edit of an approved article's title or body is kept as a
    draft version (Article.pending_version) and readers keep receiving the approved text until a
    clinical reviewer approves the draft (article_approve)."""
    article.body_markdown = normalise_markdown(article.body_markdown)
    article.title = article.title.strip()
    article.body_html = render_article_html(article.body_markdown)
    article.full_clean(exclude=["body_html", "version", "imported_hash"])
    problem = readability.publish_problem(
        body_markdown=article.body_markdown, language=article.language, status=article.status,
        override=article.reading_level_override,
    )
    if problem:  # past the hard ceiling: published only with a reviewer's reason
        raise ValidationError({"reading_level_override": problem})
    previous = Article.objects.select_for_update().filter(pk=article.pk).first() if article.pk else None
    if previous is None:
        article.version = 1
        article.save()
        _snapshot(article)
        return article
    approved_text = (previous.title.strip(), normalise_markdown(previous.body_markdown))
    if previous.is_approved and approved_text != (article.title, article.body_markdown):
        _keep_edit_as_draft(article=article, previous=previous)
    changed = any(getattr(previous, name) != getattr(article, name) for name in VERSIONED_FIELDS)
    article.version = _next_version_number(article) if changed else previous.version
    article.save()
    if changed:
        _snapshot(article)
    return article


# --- approval ---------------------------------------------------------------------------------------


class ApprovalError(Exception):
    """Why nothing was approved; the message is for the person approving."""


def reviewer_name(user) -> str:
    """How readers see the reviewer: their full name, else their username."""
    return (user.get_full_name() or user.get_username()).strip()


@transaction.atomic
def article_approve(*, article_id: int, user, role: str = "", next_review_on: dt.date | None = None) -> ArticleVersion:
    """`user` (an active staff user with content.approve_article) approves the article's pending
    draft, or its live text when there is none: that text becomes what readers receive, with who
    approved it, their role, when, and the next review date (default: NURTURE_CONTENT_REVIEW_MONTHS
    from today). Sends content.signals.article_approved (the engine writes the audit entry)."""
    if user is None or not (user.is_active and user.is_staff):
        raise ApprovalError("Only an active staff user can approve articles.")
    if not user.has_perm(APPROVE_PERMISSION):
        raise PermissionDenied(
            f"{user.get_username()!r} lacks the permission 'approve articles' ({CLINICAL_REVIEWERS}).")
    name = reviewer_name(user)
    if not name:
        raise ApprovalError("The reviewer needs a name readers can see.")
    article = Article.objects.select_for_update().get(pk=article_id)
    today = timezone.localdate()
    next_review_on = next_review_on or selectors.months_after(today, selectors.review_period_months())
    if next_review_on <= today:
        raise ApprovalError("The next review date must be after today.")
    pending = article.pending_version
    if pending is not None:
        article.title, article.body_markdown = pending.title, pending.body_markdown
        article.body_html = pending.body_html
        article.version = pending.version
    problem = readability.publish_problem(
        body_markdown=article.body_markdown, language=article.language, status=article.status,
        override=article.reading_level_override,
    )
    if problem:
        raise ApprovalError(problem)
    article.approved_by, article.approved_by_name, article.approved_by_role = user, name, role.strip()[:200]
    article.approved_at, article.next_review_on = timezone.now(), next_review_on
    article.review_reminded_early_on = article.review_reminded_due_on = None
    article.pending_version = None
    article.save()
    version = pending or ArticleVersion.objects.filter(article=article, version=article.version).first()
    if version is None:  # an article saved before snapshots (or made directly): snapshot it now
        version = _snapshot(article)
    else:
        version.is_draft, version.status = False, article.status
        for name_ in ("approved_by", "approved_by_name", "approved_by_role", "approved_at", "next_review_on"):
            setattr(version, name_, getattr(article, name_))
        version.save()
    article_approved.send(sender=Article, article=article, version=version, user=user)
    return version


def articles_approve(*, user, role: str = "", language: str | None = None,
                     slugs: list[str] | None = None) -> list[ArticleVersion]:
    """Approve a set of articles for `user` (all of a language, or these slugs), all or nothing:
    `manage.py approve_articles`. Raises ApprovalError naming slugs that do not exist."""
    articles = Article.objects.all().order_by("language", "slug")
    if language:
        articles = articles.filter(language=language)
    if slugs:
        missing = sorted(set(slugs) - set(articles.filter(slug__in=slugs).values_list("slug", flat=True)))
        if missing:
            raise ApprovalError(f"No such article{'s' if len(missing) > 1 else ''}: {', '.join(missing)}.")
        articles = articles.filter(slug__in=slugs)
    with transaction.atomic():
        return [article_approve(article_id=pk, user=user, role=role) for pk in articles.values_list("pk", flat=True)]


# --- review reminders ---------------------------------------------------------------------------------

REMIND_DAYS_BEFORE = 30


def _reminder_recipients(article: Article) -> list[str]:
    group_emails = Group.objects.filter(name=CLINICAL_REVIEWERS).values_list("user__email", flat=True)
    approver = [article.approved_by.email] if article.approved_by_id and article.approved_by.is_active else []
    return sorted({e for e in [*approver, *group_emails] if e})


def review_reminders_send(*, today: dt.date | None = None) -> dict[str, int]:
    """The daily reminder: to the approving reviewer and the "Clinical reviewers" group, once
    REMIND_DAYS_BEFORE days before an approved article falls due for review and once when it is due.
    Each article is marked so it is reminded once per approval."""
    today = today or timezone.localdate()
    sent = {"early": 0, "due": 0}
    for kind, article in selectors.articles_needing_review_reminder(today=today, days_before=REMIND_DAYS_BEFORE):
        recipients = _reminder_recipients(article)
        if recipients:
            due = article.next_review_on.isoformat()
            if kind == "due":
                subject = f"Review due: {article.title} ({article.language})"
                lead = f"The article below was due for review on {due}."
            else:
                subject = (
                    f"Review due in {(article.next_review_on - today).days} days: {article.title} ({article.language})"
                )
                lead = f"The article below falls due for review on {due}."
            hold = ("Past that date it is held (not sent) until it is approved again."
                    if settings.NURTURE_REVIEW_OVERDUE == "hold"
                    else "Past that date it keeps being sent (NURTURE_REVIEW_OVERDUE=send).")
            body = (f"{lead}\n\n{article.title}\n"
                    f"slug: {article.slug}, language: {article.language}, version {article.version}\n"
                    f"approved {article.approved_at:%Y-%m-%d} by {article.approved_by_name}\n\n{hold}\n"
                    f"Review it in the admin: {settings.SITE_URL}/admin/content/article/{article.pk}/change/\n")
            send_mail(subject, body, None, recipients)
            sent[kind] += 1
        field_name = "review_reminded_due_on" if kind == "due" else "review_reminded_early_on"
        Article.objects.filter(pk=article.pk).update(**{field_name: today})
    return sent


def article_fingerprint(*, title, stages, source_section, body_markdown, status, reviewer, last_reviewed) -> str:
    """A hash of everything the import writes to an article, in one normal form for file and database."""
    payload = {
        "title": title.strip(),
        "stages": list(stages),
        "source_section": source_section.strip(),
        "body_markdown": normalise_markdown(body_markdown),
        "status": status,
        "reviewer": reviewer.strip(),
        "last_reviewed": last_reviewed.isoformat() if last_reviewed else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _file_fingerprint(entry: ArticleFile) -> str:
    return article_fingerprint(
        title=entry.title, stages=entry.stages, source_section=entry.source_section, body_markdown=entry.body_markdown,
        status=entry.status, reviewer=entry.reviewer, last_reviewed=entry.last_reviewed,
    )


def _article_fingerprint(article: Article) -> str:
    return article_fingerprint(
        title=article.title, stages=article.stages, source_section=article.source_section,
        body_markdown=article.body_markdown, status=article.status, reviewer=article.reviewer,
        last_reviewed=article.last_reviewed,
    )


def article_has_staff_edits(*, article: Article) -> bool:
    """True when the article no longer matches what was last imported (or was never imported)."""
    return article.imported_hash != _article_fingerprint(article)


# --- import ---------------------------------------------------------------------------------------------


@dataclass
class ImportChanges:
    """What an import did to one kind of row (articles, or series on the engine's side), by label."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # staff edits overwritten (--force)
    kept: list[str] = field(default_factory=list)  # staff edits kept although the file changed

    @property
    def changed(self) -> bool:
        return any((self.created, self.updated, self.replaced))


UNCHANGED, ADOPT, KEEP, REPLACE, UPDATE = "unchanged", "adopt", "keep", "replace", "update"


def _compare_with_file(*, imported_hash: str, current_hash: str, file_hash: str, force: bool) -> str:
    """How a row (article or series) relates to its file, by fingerprints:
    UNCHANGED: the file is as last imported, so staff edits, if any, stand;
    ADOPT: staff already made exactly the file's change, only the fingerprint moves;
    KEEP / REPLACE: both changed: keep the staff edit, or replace it with --force;
    UPDATE: only the file changed."""
    if imported_hash == file_hash:
        return UNCHANGED
    if current_hash == file_hash:
        return ADOPT
    if current_hash != imported_hash:
        return REPLACE if force else KEEP
    return UPDATE


def imported_row_settle(*, row, label: str, fingerprint: Callable[[object], str], file_hash: str, force: bool,
                        changes: ImportChanges) -> bool:
    """The one rule for a row imported from a library file (an article here, a series in
    nurture.services.library): note what the import does to it in `changes`, record a staff edit
    that already matches the file (ADOPT), and answer whether the caller writes the file's content
    to the row (new, updated, or replaced with --force). `fingerprint(row)`: the row's own."""
    if row is None:
        changes.created.append(label)
        return True
    change = _compare_with_file(imported_hash=row.imported_hash, current_hash=fingerprint(row), file_hash=file_hash,
                                force=force)
    if change == ADOPT:
        type(row).objects.filter(pk=row.pk).update(imported_hash=file_hash)
    if change in (UNCHANGED, ADOPT):
        return False
    {KEEP: changes.kept, REPLACE: changes.replaced, UPDATE: changes.updated}[change].append(label)
    return change != KEEP


def _import_article(entry: ArticleFile, *, force: bool, changes: ImportChanges) -> None:
    file_hash = _file_fingerprint(entry)
    article = Article.objects.select_for_update().filter(slug=entry.slug, language=entry.language).first()
    if not imported_row_settle(
        row=article, label=f"{entry.language}/{entry.slug}", fingerprint=_article_fingerprint, file_hash=file_hash,
        force=force, changes=changes,
    ):
        return
    article = article or Article(slug=entry.slug, language=entry.language)
    article.title = entry.title
    article.stages = entry.stages
    article.source_section = entry.source_section
    article.body_markdown = entry.body_markdown
    article.status = entry.status
    article.reviewer = entry.reviewer
    article.last_reviewed = entry.last_reviewed
    article.reading_level_override = entry.reading_level_override
    article.imported_hash = file_hash
    article_save(article=article)


def articles_import(*, entries: list[ArticleFile], force: bool = False) -> ImportChanges:
    """Write the library's articles, inside the caller's transaction (nurture.services.library's
    library_import reads and checks the whole library first, then imports articles and series in one).
    An article staff changed in admin since the last import is left alone when its file changed
    too, unless force=True."""
    changes = ImportChanges()
    for entry in entries:
        with as_library_problem(entry.path):
            _import_article(entry, force=force, changes=changes)
    return changes
