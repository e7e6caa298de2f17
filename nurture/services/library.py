"""Importing the library (content/library/): the guide's articles through content.services, then the
default series, their steps and which articles each step carries.

The series are the engine's, so their import lives here and depends on content, never the reverse.
`load_content` is a thin command over `library_import`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from content.models import Article
from content.parsing import SeriesEntry, as_library_problem, read_library
from content.services import ImportChanges, articles_import, default_library_dir, imported_row_settle
from nurture.models import Series, Step, StepArticle


# --- fingerprints -----------------------------------------------------------------------------------


def _series_fingerprint(name: str, steps: list[tuple[int, str, list[str], bool]]) -> str:
    # A "before treatment" mark adds to its step's entry; unmarked steps hash as before it existed.
    payload = {"name": name.strip(), "steps": [
        [delay, subject.strip(), list(slugs), *(["before_treatment"] if before else [])]
        for delay, subject, slugs, before in steps
    ]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _entry_fingerprint(entry: SeriesEntry) -> str:
    return _series_fingerprint(entry.name,
                               [(s.delay_days, s.subject, s.article_slugs, s.before_treatment) for s in entry.steps])


def _db_series_fingerprint(series: Series) -> str:
    steps = []
    for step in series.steps.order_by("position"):
        slugs = list(StepArticle.objects.filter(step=step).order_by("order").values_list("article__slug", flat=True))
        steps.append((step.delay_days, step.subject, slugs, step.before_treatment))
    return _series_fingerprint(series.name, steps)


# --- import -----------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    articles_total: int = 0
    series_total: int = 0
    articles: ImportChanges = field(default_factory=ImportChanges)
    series: ImportChanges = field(default_factory=ImportChanges)
    steps_kept_with_deliveries: list[str] = field(default_factory=list)
    reading_warnings: list[str] = field(default_factory=list)  # articles past the reading-level warning

    @property
    def changed(self) -> bool:
        return self.articles.changed or self.series.changed


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
        step.before_treatment = step_entry.before_treatment
        step.full_clean(exclude=["series"])
        step.save()
        StepArticle.objects.filter(step=step).delete()
        StepArticle.objects.bulk_create(
            StepArticle(step=step, article=articles[slug], order=order)
            for order, slug in enumerate(step_entry.article_slugs)
        )
    for step in existing.values():
        if step.deliveries.exists():
            report.steps_kept_with_deliveries.append(
                f"{entry.language}/{entry.stage} step {step.position + 1} ({step.subject!r})")
        else:
            step.delete()


def _import_series(entry: SeriesEntry, *, force: bool, report: ImportReport) -> None:
    file_hash = _entry_fingerprint(entry)
    series = Series.objects.select_for_update().filter(stage=entry.stage, language=entry.language).first()
    if not imported_row_settle(
        row=series, label=f"{entry.language}/{entry.stage}", fingerprint=_db_series_fingerprint, file_hash=file_hash,
        force=force, changes=report.series,
    ):
        return
    series = series or Series(stage=entry.stage, language=entry.language)
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
    report = ImportReport(
        articles_total=len(library.articles), series_total=len(library.series),
        reading_warnings=library.reading_warnings()
    )
    with transaction.atomic():
        report.articles = articles_import(entries=library.articles, force=force)
        for series_entry in library.series:
            with as_library_problem(series_entry.path):
                _import_series(series_entry, force=force, report=report)
    return report
