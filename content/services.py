"""Writes for the guide's content: saving an article (with its version history) and importing the library.

Both the admin and `load_content` go through `article_save`, so an article's HTML, version number and
snapshots follow one rule wherever the change comes from.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from content.models import Article, ArticleVersion
from content.parsing import ArticleFile, LibraryError, Problem, SeriesEntry, read_library
from content.rendering import normalise_markdown, render_article_html
from nurture.models import Series, Step, StepArticle

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


# --- series ---------------------------------------------------------------------------------------------


def _series_fingerprint(name: str, steps: list[tuple[int, str, list[str]]]) -> str:
    payload = {"name": name.strip(), "steps": [[delay, subject.strip(), list(slugs)] for delay, subject, slugs in steps]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _entry_fingerprint(entry: SeriesEntry) -> str:
    return _series_fingerprint(entry.name, [(s.delay_days, s.subject, s.article_slugs) for s in entry.steps])


def _db_series_fingerprint(series: Series) -> str:
    steps = []
    for step in series.steps.order_by("position"):
        slugs = list(StepArticle.objects.filter(step=step).order_by("order").values_list("article__slug", flat=True))
        steps.append((step.delay_days, step.subject, slugs))
    return _series_fingerprint(series.name, steps)


# --- import ---------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    articles_total: int = 0
    series_total: int = 0
    articles_created: list[str] = field(default_factory=list)
    articles_updated: list[str] = field(default_factory=list)
    articles_replaced: list[str] = field(default_factory=list)  # staff edits overwritten (--force)
    articles_kept: list[str] = field(default_factory=list)  # staff edits kept although the file changed
    series_created: list[str] = field(default_factory=list)
    series_updated: list[str] = field(default_factory=list)
    series_replaced: list[str] = field(default_factory=list)
    series_kept: list[str] = field(default_factory=list)
    steps_kept_with_deliveries: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any((
            self.articles_created, self.articles_updated, self.articles_replaced,
            self.series_created, self.series_updated, self.series_replaced,
        ))


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


def _import_article(entry: ArticleFile, *, force: bool, report: ImportReport) -> None:
    label = f"{entry.language}/{entry.slug}"
    file_hash = _file_fingerprint(entry)
    article = Article.objects.select_for_update().filter(slug=entry.slug, language=entry.language).first()
    if article is not None:
        change = _compare_with_file(
            imported_hash=article.imported_hash, current_hash=_article_fingerprint(article), file_hash=file_hash, force=force
        )
        if change == ADOPT:
            Article.objects.filter(pk=article.pk).update(imported_hash=file_hash)
        if change in (UNCHANGED, ADOPT):
            return
        {KEEP: report.articles_kept, REPLACE: report.articles_replaced, UPDATE: report.articles_updated}[change].append(label)
        if change == KEEP:
            return
    else:
        article = Article(slug=entry.slug, language=entry.language)
        report.articles_created.append(label)
    article.title = entry.title
    article.stages = entry.stages
    article.source_section = entry.source_section
    article.body_markdown = entry.body_markdown
    article.status = entry.status
    article.reviewer = entry.reviewer
    article.last_reviewed = entry.last_reviewed
    article.imported_hash = file_hash
    article_save(article=article)


def _write_steps(series: Series, entry: SeriesEntry, report: ImportReport) -> None:
    """Make the series' steps match the file, position by position. A step keeps its row (and so its
    deliveries and subscribers' places in the series); steps past the end of the file are deleted
    unless they have deliveries, which Delivery.step PROTECTs: those stay and are reported."""
    articles = {a.slug: a for a in Article.objects.filter(language=entry.language)}
    existing = {step.position: step for step in series.steps.all()}
    for position, step_entry in enumerate(entry.steps):
        step = existing.pop(position, None) or Step(series=series, position=position)
        step.delay_days = step_entry.delay_days
        step.subject = step_entry.subject
        step.full_clean(exclude=["series"])
        step.save()
        StepArticle.objects.filter(step=step).delete()
        StepArticle.objects.bulk_create(
            StepArticle(step=step, article=articles[slug], order=order) for order, slug in enumerate(step_entry.article_slugs)
        )
    for step in existing.values():
        if step.deliveries.exists():
            report.steps_kept_with_deliveries.append(f"{entry.language}/{entry.stage} step {step.position + 1} ({step.subject!r})")
        else:
            step.delete()


def _import_series(entry: SeriesEntry, *, force: bool, report: ImportReport) -> None:
    label = f"{entry.language}/{entry.stage}"
    file_hash = _entry_fingerprint(entry)
    series = Series.objects.select_for_update().filter(stage=entry.stage, language=entry.language).first()
    if series is not None:
        change = _compare_with_file(
            imported_hash=series.imported_hash, current_hash=_db_series_fingerprint(series), file_hash=file_hash, force=force
        )
        if change == ADOPT:
            Series.objects.filter(pk=series.pk).update(imported_hash=file_hash)
        if change in (UNCHANGED, ADOPT):
            return
        {KEEP: report.series_kept, REPLACE: report.series_replaced, UPDATE: report.series_updated}[change].append(label)
        if change == KEEP:
            return
    else:
        series = Series(stage=entry.stage, language=entry.language)
        report.series_created.append(label)
    series.name = entry.name
    series.imported_hash = file_hash
    series.save()
    _write_steps(series, entry, report)


def library_import(*, library_dir: Path | None = None, force: bool = False) -> ImportReport:
    """Import the articles and default series from the library directory, all or nothing.

    The whole library is read and checked first (content.parsing.LibraryError lists every problem);
    then one transaction writes it. An article or series staff changed in admin since the last import
    is left alone when its file changed too, unless force=True; the report names both kinds.
    """
    library = read_library(Path(library_dir) if library_dir else default_library_dir())
    report = ImportReport(articles_total=len(library.articles), series_total=len(library.series))
    with transaction.atomic():
        for entry in library.articles:
            with _as_library_problem(entry.path):
                _import_article(entry, force=force, report=report)
        for series_entry in library.series:
            with _as_library_problem(series_entry.path):
                _import_series(series_entry, force=force, report=report)
    return report


@contextmanager
def _as_library_problem(path: Path):
    """A model check the file checks did not foresee still ends as a named file problem, and the
    transaction around the import rolls everything back."""
    try:
        yield
    except ValidationError as exc:
        raise LibraryError([Problem(path, 0, "; ".join(exc.messages))]) from exc
