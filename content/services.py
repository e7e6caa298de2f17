"""Writes for the guide's content: saving an article (with its version history) and importing articles.

The series in the library are the engine's (nurture.services.library imports them, and runs the
whole import). Both the admin and `load_content` go through `article_save`, so an article's HTML, version number and
snapshots follow one rule wherever the change comes from.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from content import readability
from content.models import Article, ArticleVersion
from content.parsing import ArticleFile, as_library_problem
from content.rendering import normalise_markdown, render_article_html

# A change to any of these is a new version of the article: what a subscriber reads, or whether they may.
VERSIONED_FIELDS = ("title", "body_markdown", "status")


def default_library_dir() -> Path:
    return Path(settings.BASE_DIR) / "content" / "library"


# --- articles -------------------------------------------------------------------------------------------


def _snapshot(article: Article) -> None:
    ArticleVersion.objects.create(
        article=article,
        version=article.version,
        title=article.title,
        body_markdown=article.body_markdown,
        body_html=article.body_html,
        status=article.status,
    )


@transaction.atomic
def article_save(*, article: Article) -> Article:
    """Save an article: derive body_html, and when title, body or status changed, bump the version
    and keep a snapshot of the new version (every version is kept, so a delivery's {article id: version}
    always resolves to exactly what was sent)."""
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
    changed = any(getattr(previous, name) != getattr(article, name) for name in VERSIONED_FIELDS)
    article.version = previous.version + 1 if changed else previous.version
    article.save()
    if changed:
        _snapshot(article)
    return article


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
    change = _compare_with_file(imported_hash=row.imported_hash, current_hash=fingerprint(row), file_hash=file_hash, force=force)
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
